# The N-task paper's centre loss on the tiny two-phase S-Geo row (for two tasks: half the pairwise loss).
_base_ = ['./tiny_nexusflow_twophase_sgeo.py']
nexusflow = _base_.nexusflow
nexusflow.align_loss = 'center'
model = dict(plugins=[nexusflow])
