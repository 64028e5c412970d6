# NexusFlow, two-phase (the main row of Table 2): phase 1 = uniad_sgeo.py, phase 2 = this config.
#   bash tools/dist_train.sh configs/uniad_nexusflow/uniad_sgeo.py 8
#   bash tools/dist_train.sh configs/uniad_nexusflow/nexusflow_twophase_sgeo.py 8
_base_ = ['./nexusflow_onephase_sgeo.py', './_base_/phase2.py']
load_from = 'work_dirs/uniad_sgeo/epoch_6.pth'
model = dict(frozen_modules=_base_.phase2_frozen)
