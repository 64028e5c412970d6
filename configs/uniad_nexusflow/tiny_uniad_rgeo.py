# Tiny baseline on the synthetic set, reversed geo-split.
_base_ = ['./tiny_uniad_full.py']
train_dataloader = dict(dataset=dict(split='reversed'))
