# UniAD stage-1 (track + map) model at the paper's size: ResNet-101-DCN (caffe) + FPN, 200x200x256 BEVFormer encoder
# with 6 layers, 900 + 1 track queries over 6 decoder layers, 300 map queries, 6 + 6 map transformer layers.
# UniAD initialises it from BEVFormer-base weights (ckpts/bevformer_r101_dcn_24ep.pth), which is why the backbone may
# stay frozen: the configs built on this file set load_from to the converted copy,
# ckpts/bevformer_r101_dcn_24ep_nexusflow.pth (tools/model_converters/bevformer_to_nexusflow.py); uniad_full_imagenet.py
# starts from ImageNet weights instead. tools/train.py refuses frozen modules that nothing initialised.
# The geometry must equal the dataset's point_cloud_range and map canvas (tests/test_configs.py checks it).
pc_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
bev_h, bev_w = 200, 200
embed_dims = 256
ffn_dims = 512
num_cams = 6
num_levels = 4
num_classes = 10

model = dict(
    type='UniADTrackMap',
    history_bev='recompute',  # UniAD's behaviour; 'reuse' encodes each frame once (see tools/benchmark.py)
    data_preprocessor=dict(type='UniADTrackMapDataPreprocessor', mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0],
                           bgr_to_rgb=False, pad_size_divisor=32),
    grid_mask=dict(type='UniADGridMask', ratio=0.5, rotate=1, prob=0.7),
    img_backbone=dict(
        type='mmdet.ResNet', depth=101, num_stages=4, out_indices=(1, 2, 3), frozen_stages=4,
        norm_cfg=dict(type='BN2d', requires_grad=False), norm_eval=True, style='caffe',
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False), stage_with_dcn=(False, False, True, True)),
    img_neck=dict(
        type='mmdet.FPN', in_channels=[512, 1024, 2048], out_channels=embed_dims, start_level=0,
        add_extra_convs='on_output', num_outs=num_levels, relu_before_extra_convs=True),
    bev_encoder=dict(
        type='UniADBEVFormerEncoder', bev_h=bev_h, bev_w=bev_w, embed_dims=embed_dims, num_layers=6, num_cams=num_cams,
        num_feature_levels=num_levels, point_cloud_range=pc_range, num_points_in_pillar=4, num_heads=8,
        tsa_num_points=4, sca_num_points=8, ffn_dims=ffn_dims, dropout=0.1, use_can_bus=True, use_cams_embeds=True,
        with_cp=False),
    track_head=dict(
        type='UniADTrackHead', num_query=900, num_classes=num_classes, embed_dims=embed_dims, bev_h=bev_h,
        bev_w=bev_w, point_cloud_range=pc_range, with_ego_query=True,
        decoder=dict(num_layers=6, num_heads=8, num_points=4, ffn_dims=ffn_dims, dropout=0.1),
        qim=dict(fp_ratio=0.3, random_drop=0.1, update_query_pos=True, merger_dropout=0.0),
        memory_bank=dict(memory_bank_len=4, save_period=3, score_thresh=0.0),
        tracker=dict(score_thresh=0.4, filter_score_thresh=0.35, miss_tolerance=5),
        gt_iou_threshold=0.5),
    map_head=dict(
        type='UniADMapHead', bev_h=bev_h, bev_w=bev_w, embed_dims=embed_dims, num_query=300, num_things_classes=3,
        num_stuff_classes=1,
        transformer=dict(num_encoder_layers=6, num_decoder_layers=6, num_heads=8, num_points=4, ffn_dims=ffn_dims,
                         dropout=0.1),
        thing_mask_head=dict(num_layers=4), stuff_mask_head=dict(num_layers=6, self_attn=True)),
)
