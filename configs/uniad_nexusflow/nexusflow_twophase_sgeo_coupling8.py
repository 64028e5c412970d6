# Ablation (Table 3, number of coupling layers): 8 affine couplings instead of 6.
_base_ = ['./nexusflow_twophase_sgeo.py']
nexusflow = _base_.nexusflow
nexusflow.coupling.num_layers = 8
model = dict(plugins=[nexusflow])
