# JTR on UniAD stage-1, reversed geo-split (track labels only in Boston, map labels only in Singapore).
_base_ = ['./jtr_sgeo.py']
train_dataloader = dict(dataset=dict(split='reversed'))
