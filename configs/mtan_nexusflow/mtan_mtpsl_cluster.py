# Table 4 "MTPSL": the baseline (MTAN, clustering protocol, one task label per image) plus MTPSL's cross-task
# consistency (official mapping network and weights, see ./_base_/plugins/mtpsl_mtan.py). The FiLM parameters train
# at 10x the learning rate (1e-3), as the official separate Adam (no weight decay anywhere, as MTAN).
_base_ = ['./mtan_baseline_cluster.py', './_base_/plugins/mtpsl_mtan.py']
model = dict(plugins=[_base_.mtpsl])
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'film_': dict(lr_mult=10.0)}))
