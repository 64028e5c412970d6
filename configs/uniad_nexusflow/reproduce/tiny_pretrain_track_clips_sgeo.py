# tiny_pretrain_track_clips.py on the leak-free pretraining labels of tiny_pretrain_track_sgeo.py (Singapore boxes
# only); the second stage of the pretraining chain of synth_geo_table_noleak.py.
_base_ = ['./tiny_pretrain_track_clips.py']
train_dataloader = dict(dataset=dict(split='standard'))
