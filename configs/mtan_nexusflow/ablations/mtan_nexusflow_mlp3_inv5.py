# Table B.2 (number of invertible layers, 3-layer MLP aggregators): 5 affine couplings.
_base_ = ['../mtan_nexusflow_center.py']
nexusflow = _base_.nexusflow
nexusflow.coupling.num_layers = 5
model = dict(plugins=[nexusflow])
