# Tiny baseline: the clustering protocol (one task label per image), no plug-in.
_base_ = ['./tiny_mtan_full.py']
train_dataloader = dict(dataset=dict(protocol='cluster'))
