# NexusFlow sized for the mid-size configs (100x100 BEV, 128 channels, 4 heads): same structure as ./nexusflow.py.
_base_ = ['./nexusflow.py']
nexusflow = _base_.nexusflow
nexusflow.latent_dim = 128
nexusflow.coupling.hidden_dims = (128, )
nexusflow.tasks.track.aggregator.update(in_channels=128, embed_dims=128, num_heads=4)
nexusflow.tasks.map.aggregator.update(in_channels=128, embed_dims=128, num_heads=4)
nexusflow.tasks.map.tap.bev_shape = (100, 100)
