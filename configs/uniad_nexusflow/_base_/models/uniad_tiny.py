# The CPU-sized UniAD stage-1: ResNet-18 + FPN (64 ch, 3 levels), 50x50x64 BEV with 2 encoder layers, 100 + 1 track
# queries over 3 decoder layers, 100 map queries over 2 + 2 transformer layers. Trained from scratch. 100 track queries
# (UniAD: 900) suit the synthetic scenes' ~20 objects per frame: each query is matched more often and learns faster.
_base_ = ['./uniad_stage1.py']

bev_h, bev_w = 50, 50
embed_dims = 64
ffn_dims = 128
num_levels = 3

model = dict(
    history_bev='reuse',
    grid_mask=None,
    # a pytorch-style ResNet trained from scratch: per-channel standardised RGB input
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    img_backbone=dict(
        _delete_=True, type='mmdet.ResNet', depth=18, num_stages=4, out_indices=(1, 2, 3), frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch'),
    img_neck=dict(in_channels=[128, 256, 512], out_channels=embed_dims, num_outs=num_levels),
    bev_encoder=dict(bev_h=bev_h, bev_w=bev_w, embed_dims=embed_dims, num_layers=2, num_feature_levels=num_levels,
                     num_heads=4, ffn_dims=ffn_dims),
    track_head=dict(num_query=100, embed_dims=embed_dims, bev_h=bev_h, bev_w=bev_w,
                    decoder=dict(num_layers=3, num_heads=4, ffn_dims=ffn_dims)),
    map_head=dict(bev_h=bev_h, bev_w=bev_w, embed_dims=embed_dims, num_query=100,
                  transformer=dict(num_encoder_layers=2, num_decoder_layers=2, num_heads=4, ffn_dims=ffn_dims),
                  thing_mask_head=dict(num_layers=2), stuff_mask_head=dict(num_layers=2)),
)
