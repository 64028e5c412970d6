# Tiny MTPSL, R-Geo (track labels only in Boston, map labels only in Singapore), on the synthetic set.
_base_ = ['./tiny_mtpsl_sgeo.py']
train_dataloader = dict(dataset=dict(split='reversed'))
