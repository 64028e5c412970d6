# tiny_pretrain_track_sgeo.py (box labels of the pretraining set only in Singapore) with the 100x100 BEV of
# tiny_pretrain_track_bev100.py: the first stage of the pretraining chain of synth_geo_table_noleak_bev100.py.
_base_ = ['./tiny_pretrain_track_bev100.py']
train_dataloader = dict(dataset=dict(split='standard'))
