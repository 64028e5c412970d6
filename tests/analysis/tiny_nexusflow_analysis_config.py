# tiny_analysis_config.py with a small NexusFlow plug-in of the papers' structure: the track surrogate reads the
# track decoder's last-layer queries, the map surrogate the map transformer's BEV-shaped encoder memory; 32-d
# embeddings, 2 affine couplings keeping the second half (16-d latents), pairwise alignment.
_base_ = ['./tiny_analysis_config.py']

nexusflow = dict(
    type='NexusFlow',
    latent_dim=32,
    coupling=dict(num_layers=2, hidden_dims=(32, ), clamp=2.0, output='half'),
    align_loss='pairwise',
    tasks=dict(
        track=dict(tap=dict(module='track_head.decoder', kind='queries'),
                   aggregator=dict(type='NexusFlowQuerySetAggregator', in_channels=64, embed_dims=32, num_queries=4,
                                   num_heads=4)),
        map=dict(tap=dict(module='map_head.transformer.encoder', kind='bev', bev_shape=(25, 25)),
                 aggregator=dict(type='NexusFlowDeformableAggregator', in_channels=64, embed_dims=32, num_queries=4,
                                 num_heads=4, num_points=2))))
model = dict(plugins=[nexusflow])
