# tiny_pretrain_track_clips.py with the 100x100 BEV of tiny_pretrain_track_bev100.py, started from that stage's
# checkpoint (load_from; docs/reproduction/README.md, fifth session).
_base_ = ['./tiny_pretrain_track_clips.py']
model = dict(bev_encoder=dict(bev_h=100, bev_w=100), track_head=dict(bev_h=100, bev_w=100))
