# Table B.2 (number of invertible layers, 3-layer MLP aggregators): 4 affine couplings. Same as the main
# configuration ../mtan_nexusflow_center.py.
_base_ = ['../mtan_nexusflow_center.py']
nexusflow = _base_.nexusflow
nexusflow.coupling.num_layers = 4
model = dict(plugins=[nexusflow])
