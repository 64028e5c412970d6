# Table 4 "Ours" (center alignment, the N-task paper's adopted loss): the baseline plus NexusFlow (3-layer MLP
# aggregators, 4 affine couplings) on the three task-attention feature maps.
_base_ = ['./mtan_baseline_cluster.py', './_base_/plugins/nexusflow_mtan.py']
model = dict(plugins=[_base_.nexusflow])
