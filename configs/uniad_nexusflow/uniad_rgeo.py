# The PS-MTL baseline on the reversed geo-split (R-Geo): track labels only in Boston, map labels only in Singapore.
_base_ = ['./uniad_full.py']
train_dataloader = dict(dataset=dict(split='reversed'))
