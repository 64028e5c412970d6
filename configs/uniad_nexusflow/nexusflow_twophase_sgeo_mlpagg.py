# Ablation (N-task paper, App. A, "MLP + Inv"): MLP aggregators (mean-pool + 3-layer MLP) instead of deformable
# attention, couplings unchanged.
_base_ = ['./nexusflow_twophase_sgeo.py']
nexusflow = _base_.nexusflow
nexusflow.tasks.track.aggregator = dict(type='NexusFlowMLPAggregator', in_channels=256, depth=3)
nexusflow.tasks.map.aggregator = dict(type='NexusFlowMLPAggregator', in_channels=256, depth=3)
model = dict(plugins=[nexusflow])
