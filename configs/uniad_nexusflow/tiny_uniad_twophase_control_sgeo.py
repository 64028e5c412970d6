# Phase-2 control of the tiny two-phase rows: the baseline's phase 2 without any plug-in, with the same schedule and
# freezing as tiny_nexusflow_twophase_sgeo.py. The two-phase NexusFlow row is compared with it, so that a gain is
# not just the effect of more epochs on the task-formers.
_base_ = ['./tiny_uniad_sgeo.py', './_base_/phase2.py']
load_from = 'work_dirs/tiny_uniad_sgeo/epoch_12.pth'
model = dict(frozen_modules=_base_.phase2_frozen)
