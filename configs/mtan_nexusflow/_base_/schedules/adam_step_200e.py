# MTAN / MTPSL schedule on NYUv2: Adam lr 1e-4, StepLR(step 100 epochs, gamma 0.5), 200 epochs, validation every
# epoch (MTPSL and JTR report the best epoch on val = test; the log keeps every epoch, report the last one too).
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = [dict(type='StepLR', step_size=100, gamma=0.5, by_epoch=True, begin=0, end=200)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=2)
