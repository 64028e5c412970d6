# NexusFlow sized for the 1/8-width MTAN (8-channel task features, 64-d latents): same structure as
# ./nexusflow_mtan.py.
_base_ = ['./nexusflow_mtan.py']
nexusflow = _base_.nexusflow
nexusflow.latent_dim = 64
nexusflow.coupling.hidden_dims = (64, )
nexusflow.tasks.seg.aggregator.in_channels = 8
nexusflow.tasks.depth.aggregator.in_channels = 8
nexusflow.tasks.normal.aggregator.in_channels = 8
