# tiny_pretrain_track.py with a 100x100 BEV (1.02 m cells instead of 2.05 m over the same 102.4 m range): the first
# stage of a pretraining chain that measures whether the tiny tracker's cars are limited by the BEV resolution
# (docs/reproduction/README.md, fifth session: commands and results). synth_geo_table_noleak_bev100.py uses its
# leak-free variant, tiny_pretrain_track_sgeo_bev100.py.
_base_ = ['./tiny_pretrain_track.py']
model = dict(bev_encoder=dict(bev_h=100, bev_w=100), track_head=dict(bev_h=100, bev_w=100))
