# Tiny NexusFlow, two-phase, S-Geo: phase 1 = tiny_uniad_sgeo.py (trained into work_dirs/tiny_uniad_sgeo).
_base_ = ['./tiny_nexusflow_onephase_sgeo.py', './_base_/phase2.py']
load_from = 'work_dirs/tiny_uniad_sgeo/epoch_12.pth'
model = dict(frozen_modules=_base_.phase2_frozen)
