# UniAD stage-1 schedule: AdamW 2e-4 (backbone x0.1), wd 0.01, grad clip 35, 500-iter linear warmup from 1/3,
# cosine to 1e-3 x lr over 6 epochs. auto_scale_lr refers to UniAD's 8 GPUs x 1 clip.
lr = 2e-4
max_epochs = 6
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys=dict(img_backbone=dict(lr_mult=0.1))),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min_ratio=1e-3,
         convert_to_iter_based=True),
]
# NonFiniteGuardTrainLoop = EpochBasedTrainLoop + nonfinite_policy: 'raise' stops at the first NaN/inf, 'skip' drops
# that iteration's update and stops after max_consecutive_skips in a row (projects/nexusflow/engine/nonfinite_loop.py)
train_cfg = dict(type='NexusFlowNonFiniteGuardTrainLoop', max_epochs=max_epochs, val_interval=max_epochs,
                 nonfinite_policy='raise', max_consecutive_skips=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=8)
