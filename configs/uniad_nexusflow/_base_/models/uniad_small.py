# The mid-size UniAD stage-1 between uniad_tiny.py (CPU) and uniad_stage1.py (the paper): ResNet-50 + FPN (128 ch,
# 4 levels) on 800x450 images, a 100x100x128 BEVFormer encoder with 3 layers (BEVFormer-small's depth), 600 + 1 track
# queries over 4 decoder layers, 200 map queries over 4 + 4 transformer layers. Attention keeps the paper's 32
# channels per head and 2x FFN width. Aimed at single 24 GB GPUs and quick real-nuScenes studies (not yet measured on
# a GPU; on the CPU a train step peaks at 7-8 GB RSS, tools/benchmark.py). As in UniAD stage 1 the image backbone is
# frozen (weights and BN statistics), so its activations are never stored for backward; training its stages 2-4
# raised the CPU peak to over 12 GB. The frozen backbone starts from torchvision's ImageNet R50 weights (downloaded on
# first use; the input is normalised as they expect); BEVFormer checkpoints do not fit this size (R101, 256 channels).
# The geometry must equal the dataset's point_cloud_range and map canvas (nus_track_map_small.py: 100x100).
_base_ = ['./uniad_stage1.py']

bev_h, bev_w = 100, 100
embed_dims = 128
ffn_dims = 256
num_heads = 4
num_levels = 4

model = dict(
    history_bev='reuse',
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    img_backbone=dict(
        _delete_=True, type='mmdet.ResNet', depth=50, num_stages=4, out_indices=(1, 2, 3), frozen_stages=4,
        norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='https://download.pytorch.org/models/resnet50-0676ba61.pth')),
    img_neck=dict(in_channels=[512, 1024, 2048], out_channels=embed_dims, num_outs=num_levels),
    bev_encoder=dict(bev_h=bev_h, bev_w=bev_w, embed_dims=embed_dims, num_layers=3, num_feature_levels=num_levels,
                     num_heads=num_heads, ffn_dims=ffn_dims),
    track_head=dict(num_query=600, embed_dims=embed_dims, bev_h=bev_h, bev_w=bev_w,
                    decoder=dict(num_layers=4, num_heads=num_heads, ffn_dims=ffn_dims)),
    map_head=dict(bev_h=bev_h, bev_w=bev_w, embed_dims=embed_dims, num_query=200,
                  transformer=dict(num_encoder_layers=4, num_decoder_layers=4, num_heads=num_heads, ffn_dims=ffn_dims),
                  thing_mask_head=dict(num_layers=3), stuff_mask_head=dict(num_layers=4)),
)
