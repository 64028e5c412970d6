# Tiny baseline on the synthetic set, standard geo-split (map labels in Boston, track labels in Singapore).
# Also phase 1 of tiny_nexusflow_twophase_sgeo.py.
_base_ = ['./tiny_uniad_full.py']
train_dataloader = dict(dataset=dict(split='standard'))
