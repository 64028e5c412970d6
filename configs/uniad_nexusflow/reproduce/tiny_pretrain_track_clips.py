# Second stage of the shared pretraining of the synthetic reproduction (configs/uniad_nexusflow/reproduce/
# synth_geo_table.py): tiny_pretrain_track.py continued on 3-frame clips of the same set, so that the track queries
# learn to carry their objects from frame to frame (single frames never train a carried query). The fresh queries
# start at heatmap peaks away from the carried tracks (heatmap_init.track_radius), so an object with a track gets no
# second query and the tracker no second id. The protocol starts it from the first stage's final checkpoint.
_base_ = ['./tiny_pretrain_track.py']
lr = 1e-3
max_epochs = 2
model = dict(track_head=dict(heatmap_init=dict(track_radius=1)))
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min_ratio=1e-2,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
train_dataloader = dict(dataset=dict(dataset=dict(queue_length=3)))
