# NexusFlow sized for the tiny configs (50x50 BEV, 64 channels): same structure as ./nexusflow.py.
_base_ = ['./nexusflow.py']
nexusflow = _base_.nexusflow
nexusflow.latent_dim = 64
nexusflow.coupling.hidden_dims = (64, )
nexusflow.tasks.track.aggregator.update(in_channels=64, embed_dims=64, num_heads=4)
nexusflow.tasks.map.aggregator.update(in_channels=64, embed_dims=64, num_heads=4)
nexusflow.tasks.map.tap.bev_shape = (50, 50)
