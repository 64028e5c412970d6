# CPU schedule for the tiny configs: AdamW 1e-3 from scratch, short warmup, cosine, grad clip 35.
_base_ = ['./adamw_cosine_6e.py']
lr = 1e-3
max_epochs = 12
optim_wrapper = dict(optimizer=dict(lr=lr), paramwise_cfg=dict(custom_keys=dict(img_backbone=dict(lr_mult=1.0))))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min_ratio=1e-2,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
