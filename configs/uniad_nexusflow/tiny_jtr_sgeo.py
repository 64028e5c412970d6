# Tiny JTR, S-Geo, on the synthetic set: ./jtr_sgeo.py sized for the tiny UniAD (50x50 canvas -> 6x6 latent).
_base_ = ['./_base_/cpu_runtime.py', './_base_/datasets/synth_track_map.py', './_base_/models/uniad_tiny.py',
          './_base_/schedules/adamw_tiny.py']
train_dataloader = dict(dataset=dict(split='standard'))

jtr = dict(
    type='NexusFlowJTR',
    autoencoder=dict(channels=(32, 64, 128)),
    dist_weight=4.0,
    recon_weight=2.0,
    encoder_dist_weight=2.0,
    tasks=dict(
        track=dict(tap='track_head.pred_tap',
                   raster=dict(type='NexusFlowTrackRaster', num_classes=10, point_cloud_range=_base_.point_cloud_range,
                               sigma=2.0)),
        map=dict(tap='map_head.pred_tap', raster=dict(type='NexusFlowMapRaster', num_classes=4))))
model = dict(plugins=[jtr])
