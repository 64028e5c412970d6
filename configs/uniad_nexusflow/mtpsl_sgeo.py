# MTPSL (Li, Liu, Bilen, CVPR'22; Table 2 "MTPSL") on UniAD stage-1, standard geo-split (map labels only in Boston,
# track labels only in Singapore). Both tasks are rendered on the 200x200 map canvas (track: 10 class centre heatmaps
# + box occupancy; map: 4 semantic masks); for every sample the unlabelled task's prediction and the labelled task's
# GT are mapped by a task-pair-FiLM-conditioned conv net into their joint space and pulled together (1 - cos), with
# the official weights con 2.0 / reg 0.5 and the regulariser towards the detached BEV encoder output. The official
# FiLM parameters train at 10x the learning rate without weight decay. See projects/nexusflow/models/psmtl/mtpsl.py.
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/nus_track_map.py', './_base_/models/uniad_stage1.py',
          './_base_/schedules/adamw_cosine_6e.py']
# Starts from BEVFormer-base converted for this project (README "Starting from BEVFormer / UniAD weights"); the
# frozen ResNet-101 needs it. Without the file, tools/train.py stops with the conversion command.
load_from = 'ckpts/bevformer_r101_dcn_24ep_nexusflow.pth'
train_dataloader = dict(dataset=dict(split='standard'))

mtpsl = dict(
    type='NexusFlowMTPSL',
    feat_channels=256,
    feature_tap=dict(module='bev_encoder', kind='bev', bev_shape=(200, 200)),
    mapper=dict(channels=(64, 64, 128)),
    con_weight=2.0,
    reg_weight=0.5,
    tasks=dict(
        track=dict(tap='track_head.pred_tap',
                   raster=dict(type='NexusFlowTrackRaster', num_classes=10,
                               point_cloud_range=_base_.point_cloud_range)),
        map=dict(tap='map_head.pred_tap', raster=dict(type='NexusFlowMapRaster', num_classes=4))))
model = dict(plugins=[mtpsl])
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'film_': dict(lr_mult=10.0, decay_mult=0.0)}))
