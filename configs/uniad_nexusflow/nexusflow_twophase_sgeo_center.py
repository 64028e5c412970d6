# The N-task paper's centre-based alignment sum_t ||z_t - mean(z)||^2 (for two tasks: half the pairwise loss).
_base_ = ['./nexusflow_twophase_sgeo.py']
nexusflow = _base_.nexusflow
nexusflow.align_loss = 'center'
model = dict(plugins=[nexusflow])
