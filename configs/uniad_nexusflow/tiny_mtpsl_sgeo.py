# Tiny MTPSL, S-Geo, on the synthetic set: ./mtpsl_sgeo.py sized for the tiny UniAD (50x50x64 BEV and canvas).
_base_ = ['./_base_/cpu_runtime.py', './_base_/datasets/synth_track_map.py', './_base_/models/uniad_tiny.py',
          './_base_/schedules/adamw_tiny.py']
train_dataloader = dict(dataset=dict(split='standard'))

mtpsl = dict(
    type='NexusFlowMTPSL',
    feat_channels=64,
    feature_tap=dict(module='bev_encoder', kind='bev', bev_shape=(50, 50)),
    mapper=dict(channels=(32, 32, 64)),
    con_weight=2.0,
    reg_weight=0.5,
    tasks=dict(
        track=dict(tap='track_head.pred_tap',
                   raster=dict(type='NexusFlowTrackRaster', num_classes=10, point_cloud_range=_base_.point_cloud_range,
                               sigma=2.0)),
        map=dict(tap='map_head.pred_tap', raster=dict(type='NexusFlowMapRaster', num_classes=4))))
model = dict(plugins=[mtpsl])
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'film_': dict(lr_mult=10.0, decay_mult=0.0)}))
