# NexusFlow, two-phase, reversed geo-split (the R-Geo row): phase 1 = uniad_rgeo.py.
_base_ = ['./nexusflow_onephase_rgeo.py', './_base_/phase2.py']
load_from = 'work_dirs/uniad_rgeo/epoch_6.pth'
model = dict(frozen_modules=_base_.phase2_frozen)
