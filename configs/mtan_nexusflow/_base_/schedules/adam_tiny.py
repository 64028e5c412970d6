# CPU schedule of the tiny configs: Adam lr 1e-3, halved after 8 of 12 epochs, validation at the end.
_base_ = ['./adam_step_200e.py']
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='StepLR', step_size=8, gamma=0.5, by_epoch=True, begin=0, end=12)]
train_cfg = dict(max_epochs=12, val_interval=12)
auto_scale_lr = dict(base_batch_size=4)
