# Shared pretraining stage of the synthetic reproduction (configs/uniad_nexusflow/reproduce/synth_geo_table.py): the
# tiny UniAD stage 1 without its map head, trained for detection + tracking with full labels on a separate synthetic
# set (other seed, other scenes), single frames. Every row then starts from it with the image backbone frozen, as
# UniAD stage 1 starts from a BEVFormer detector: the backbone, BEV encoder and track head have seen box labels of
# both cities (the paper's leakage: BEVFormer is trained on all of nuScenes), the map head starts from scratch.
_base_ = ['../tiny_uniad_full.py']
lr = 2e-3
max_epochs = 4
# heatmap-initialised track queries with a strong dense loss: the BEV learns to localise objects several times faster
# (docs/reproduction/README.md); the rows keep the same head (row_options of the protocol)
model = dict(map_head=None, track_head=dict(heatmap_init=dict(loss_weight=10.0)))
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min_ratio=1e-2,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
train_dataloader = dict(dataset=dict(dataset=dict(queue_length=1)))
val_evaluator = [dict(type='NexusFlowNuScenesTrackingMetric', per_city=True)]
test_evaluator = val_evaluator
