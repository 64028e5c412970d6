# Table 4 "Baseline": MTAN trained under the clustering protocol (three equal clusters of the training images,
# one task labelled per cluster), no plug-in.
_base_ = ['./mtan_full.py']
train_dataloader = dict(dataset=dict(protocol='cluster'))
