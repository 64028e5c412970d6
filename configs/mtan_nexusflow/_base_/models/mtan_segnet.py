# MTAN (SegNet, filters 64-128-256-512-512, per-task attention) with the three NYUv2 heads: 13-class log-softmax
# segmentation, 1-channel depth, L2-normalised 3-channel normals; losses CE / L1 / 1-cos, each gated per sample by
# its label flag. Images enter as RGB in [0, 1] without normalisation, as in MTAN.
model = dict(
    type='NexusFlowMTANMultiTask',
    data_preprocessor=dict(type='NexusFlowNYUv2DataPreprocessor'),
    backbone=dict(type='NexusFlowMTANSegNet', tasks=('seg', 'depth', 'normal'), width=1.0),
    heads=dict(
        seg=dict(type='NexusFlowNYUv2SegHead', num_classes=13, loss_weight=1.0),
        depth=dict(type='NexusFlowNYUv2DepthHead', loss_weight=1.0),
        normal=dict(type='NexusFlowNYUv2NormalHead', loss_weight=1.0)))
