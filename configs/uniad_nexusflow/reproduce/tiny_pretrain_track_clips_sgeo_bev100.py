# tiny_pretrain_track_clips_sgeo.py (box labels only in Singapore) with the 100x100 BEV of
# tiny_pretrain_track_clips_bev100.py: the second stage of the pretraining chain of synth_geo_table_noleak_bev100.py.
_base_ = ['./tiny_pretrain_track_clips_bev100.py']
train_dataloader = dict(dataset=dict(split='standard'))
