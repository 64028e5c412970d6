# JTR (Nishi, Kim, Li, Pfister, CVPR'24; Table 2 "JTR") on UniAD stage-1, standard geo-split (map labels only in
# Boston, track labels only in Singapore). Both tasks are rendered on the 200x200 map canvas (track: 10 class centre
# heatmaps + box occupancy; map: 4 semantic masks) and stacked; a SegNet-style auto-encoder encodes the stack of
# predictions and the stack with GT substituted where present into one joint-task latent, with the official weights
# 4 * L_dist + 2 * L_recon. See projects/nexusflow/models/psmtl/jtr.py.
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/nus_track_map.py', './_base_/models/uniad_stage1.py',
          './_base_/schedules/adamw_cosine_6e.py']
# Starts from BEVFormer-base converted for this project (README "Starting from BEVFormer / UniAD weights"); the
# frozen ResNet-101 needs it. Without the file, tools/train.py stops with the conversion command.
load_from = 'ckpts/bevformer_r101_dcn_24ep_nexusflow.pth'
train_dataloader = dict(dataset=dict(split='standard'))

jtr = dict(
    type='NexusFlowJTR',
    autoencoder=dict(channels=(64, 128, 256)),
    dist_weight=4.0,
    recon_weight=2.0,
    encoder_dist_weight=2.0,
    tasks=dict(
        track=dict(tap='track_head.pred_tap',
                   raster=dict(type='NexusFlowTrackRaster', num_classes=10,
                               point_cloud_range=_base_.point_cloud_range)),
        map=dict(tap='map_head.pred_tap', raster=dict(type='NexusFlowMapRaster', num_classes=4))))
model = dict(plugins=[jtr])
