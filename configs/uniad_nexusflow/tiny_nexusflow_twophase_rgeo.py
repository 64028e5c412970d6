# Tiny NexusFlow, two-phase, R-Geo: phase 1 = tiny_uniad_rgeo.py.
_base_ = ['./tiny_nexusflow_onephase_rgeo.py', './_base_/phase2.py']
load_from = 'work_dirs/tiny_uniad_rgeo/epoch_12.pth'
model = dict(frozen_modules=_base_.phase2_frozen)
