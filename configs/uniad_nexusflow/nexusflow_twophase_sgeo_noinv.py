# Ablation "w/o inv": the coupling stack replaced by a plain MLP of the same depth and output size.
_base_ = ['./nexusflow_twophase_sgeo.py']
nexusflow = _base_.nexusflow
nexusflow.invertible = False
model = dict(plugins=[nexusflow])
