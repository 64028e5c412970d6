# tiny_pretrain_track_clips.py with the 100x100 BEV of tiny_pretrain_track_bev100.py (second pretraining stage of
# synth_geo_table_bev100.py).
_base_ = ['./tiny_pretrain_track_clips.py']
model = dict(bev_encoder=dict(bev_h=100, bev_w=100), track_head=dict(bev_h=100, bev_w=100))
