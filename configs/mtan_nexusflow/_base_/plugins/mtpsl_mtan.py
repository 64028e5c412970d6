# MTPSL (Li, Liu, Bilen, CVPR'22) on MTAN, as its official NYUv2 code (VICO-UoE/MTPSL: nyu_mtl_xtc.py, mapfns.py):
# each task's prediction (read at heads.<task>.pred_tap) and label enter the official preprocessing (seg: one hard
# Gumbel-softmax sample / one-hot label; depth: d / max d; normals: (n + 1) / 2); a task-pair FiLM-conditioned SegNet
# encoder (a conv-BN-ReLU input layer per task, then 2-2-3-3-3 FiLM convs of 64-128-256-512-512 filters, a 2x2
# max-pool after each stage, ReLU throughout) maps them onto the 512 x H/32 x W/32 grid (9 x 12 at 288 x 384) of
# MTAN's shared bottleneck (backbone.encoder_pools.4, the detached target of the regulariser). Every
# unlabelled-source x labelled-target pair of a sample counts (2 pairs per image when it has one label);
# loss = 2.0 * sum_pairs [(1 - cos) + 0.5 * reg] / B. Configs attach it with model = dict(plugins=[_base_.mtpsl]) and
# give the FiLM parameters (names with 'film_') 10x the learning rate, the official separate Adam at 1e-3.
mtpsl = dict(
    type='NexusFlowMTPSL',
    feat_channels=512,
    feature_tap=dict(module='backbone.encoder_pools.4', kind='feature_map', index=0),
    # = projects.nexusflow.models.psmtl.segnet_channels((64, 128, 256, 512, 512))
    mapper=dict(channels=(64, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512), stage_depths=(2, 2, 3, 3, 3),
                last_act=True),
    con_weight=2.0,
    reg_weight=0.5,
    tasks=dict(
        seg=dict(tap='heads.seg.pred_tap',
                 raster=dict(type='NexusFlowDenseTaskRaster', encoding='one_hot', channels=13, flag='has_seg',
                             gt_field='gt_sem_seg')),
        depth=dict(tap='heads.depth.pred_tap',
                   raster=dict(type='NexusFlowDenseTaskRaster', encoding='max_scaled', channels=1, flag='has_depth',
                               gt_field='gt_depth')),
        normal=dict(tap='heads.normal.pred_tap',
                    raster=dict(type='NexusFlowDenseTaskRaster', encoding='unit_vector', channels=3, flag='has_normal',
                                gt_field='gt_normal'))))
