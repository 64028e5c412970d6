# NexusFlow on MTAN as in the N-task paper (nexusflow_ntask.txt, Sec. 4.2 and App. B): between the shared network
# and each task's prediction layer, the task's attended feature map (MTAN's last decoder attention gate, the input
# of its head: [B, 64, H, W]) is averaged over the image and embedded by a 3-layer MLP (256-d), then mapped by 4
# RealNVP affine couplings (full bijection, exact inverse) to the latent; center alignment, lambda = 1.
# Configs attach it with model = dict(plugins=[_base_.nexusflow]).
nexusflow = dict(
    type='NexusFlow',
    latent_dim=256,
    coupling=dict(num_layers=4, hidden_dims=(256, ), clamp=2.0, output='full'),
    invertible=True,
    align_loss='center',
    loss_weight=1.0,
    tasks=dict(
        seg=dict(tap=dict(module='backbone.decoder_attention.seg.4', kind='feature_map'),
                 aggregator=dict(type='NexusFlowMLPAggregator', in_channels=64, depth=3)),
        depth=dict(tap=dict(module='backbone.decoder_attention.depth.4', kind='feature_map'),
                   aggregator=dict(type='NexusFlowMLPAggregator', in_channels=64, depth=3)),
        normal=dict(tap=dict(module='backbone.decoder_attention.normal.4', kind='feature_map'),
                    aggregator=dict(type='NexusFlowMLPAggregator', in_channels=64, depth=3))))
