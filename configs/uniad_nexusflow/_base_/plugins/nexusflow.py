# NexusFlow on UniAD as in the 2-task paper (nexusflow_nuscenes.txt, Sec. 3.2): per task a deformable aggregator ->
# 256-d embedding -> 6 RealNVP affine couplings keeping the second partition ('half') -> latent; pairwise alignment
# ||z_map - z_track||^2 with lambda = 1. The track surrogate reads the track decoder's last-layer queries with their
# reference points; the map surrogate reads the map transformer's BEV-shaped encoder memory.
# Configs attach it with model = dict(plugins=[_base_.nexusflow]).
nexusflow = dict(
    type='NexusFlow',
    latent_dim=256,
    coupling=dict(num_layers=6, hidden_dims=(256, ), clamp=2.0, output='half'),
    invertible=True,
    align_loss='pairwise',
    loss_weight=1.0,
    tasks=dict(
        track=dict(tap=dict(module='track_head.decoder', kind='queries'),
                   aggregator=dict(type='NexusFlowQuerySetAggregator', in_channels=256, embed_dims=256, num_queries=16,
                                   num_heads=8)),
        map=dict(tap=dict(module='map_head.transformer.encoder', kind='bev', bev_shape=(200, 200)),
                 aggregator=dict(type='NexusFlowDeformableAggregator', in_channels=256, embed_dims=256, num_queries=16,
                                 num_heads=8, num_points=4))))
