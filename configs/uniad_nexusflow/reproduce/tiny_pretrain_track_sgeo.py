# tiny_pretrain_track.py without the label leakage of the S-Geo rows: the pretraining set keeps its box labels only in
# the city where the S-Geo rows have track labels (Singapore), as the geo-split wrapper does for the rows. Used by
# synth_geo_table_noleak.py to measure how much of the baseline's tracking in Boston came from pretraining on Boston.
_base_ = ['./tiny_pretrain_track.py']
train_dataloader = dict(dataset=dict(split='standard'))
