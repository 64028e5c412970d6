# The PS-MTL baseline (Table 2 "Baseline"), standard geo-split: map labels only in Boston, track labels only in
# Singapore. Also phase 1 of the two-phase NexusFlow configs.
_base_ = ['./uniad_full.py']
train_dataloader = dict(dataset=dict(split='standard'))
