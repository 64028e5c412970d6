# The couplings as a full bijection (latent = the whole transformed vector) instead of the second partition only.
_base_ = ['./nexusflow_twophase_sgeo.py']
nexusflow = _base_.nexusflow
nexusflow.coupling.output = 'full'
model = dict(plugins=[nexusflow])
