# Tiny MTPSL on the clustering protocol: the 1/8-width mapping network on the 1/8-width MTAN.
_base_ = ['./tiny_mtan_baseline.py', './_base_/plugins/mtpsl_mtan_tiny.py']
model = dict(plugins=[_base_.mtpsl])
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'film_': dict(lr_mult=10.0)}))
