# Ablation "MLP w/o Inv" (2-task paper, Table 3; N-task paper, App. A.2) on the tiny model: MLP aggregators
# (mean-pool + 3-layer MLP) and plain MLP stacks instead of deformable aggregators and affine couplings.
_base_ = ['./tiny_nexusflow_twophase_sgeo.py']
nexusflow = _base_.nexusflow
nexusflow.invertible = False
nexusflow.tasks.track.aggregator = dict(type='NexusFlowMLPAggregator', in_channels=64, depth=3)
nexusflow.tasks.map.aggregator = dict(type='NexusFlowMLPAggregator', in_channels=64, depth=3)
model = dict(plugins=[nexusflow])
