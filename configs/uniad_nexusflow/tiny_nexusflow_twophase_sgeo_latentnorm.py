# The alignment-collapse remedy on the tiny two-phase S-Geo row: the pairwise loss compares latents divided by the
# running per-dimension std of both tasks' latents (latent_norm='running'), so it cannot be won by shrinking them.
_base_ = ['./tiny_nexusflow_twophase_sgeo.py']
nexusflow = _base_.nexusflow
nexusflow.latent_norm = 'running'
model = dict(plugins=[nexusflow])
