# synth_geo_table_noleak.py with a 100x100 BEV (1.02 m cells instead of 2.05 m over the same 102.4 m): the BEV
# encoder, the track head and the map head run on 100x100 queries; the map head's masks are resized to the set's
# 50x50 map canvas (map_head.canvas_size), so map IoU is measured on the same GT as in the 50x50 protocols:
#   python tools/reproduce.py configs/uniad_nexusflow/reproduce/synth_geo_table_noleak_bev100.py
# Rows: the ones whose configs are size-agnostic (MTPSL's and JTR's tiny configs are sized for a 50x50 BEV).
# Measured (docs/reproduction/README.md, sixth to ninth sessions): seeds 0, 1, 2 of full, baseline, phase2_control,
# nexusflow_2p on one chain (and seeds 0, 1 on a chain trained on another machine); seed 0 of nexusflow_1p; not yet:
# spread_floor. One chain per seed: synth_geo_table_noleak_bev100_perseed.py (seeds 0, 1 measured, tenth session).
_base_ = ['./synth_geo_table_noleak.py']
pretrain = dict(
    config='configs/uniad_nexusflow/reproduce/tiny_pretrain_track_sgeo_bev100.py',
    then=[dict(name='clips', config='configs/uniad_nexusflow/reproduce/tiny_pretrain_track_clips_sgeo_bev100.py')])
bev_options = {'model.bev_encoder.bev_h': 100, 'model.bev_encoder.bev_w': 100,
               'model.track_head.bev_h': 100, 'model.track_head.bev_w': 100,
               'model.map_head.bev_h': 100, 'model.map_head.bev_w': 100, 'model.map_head.canvas_size': [50, 50]}
row_options = dict(**_base_.row_options, **bev_options)
# NexusFlow's map tap reads the BEV as [B, H*W, C] and needs its shape
config_options = {'tiny_nexusflow_*': {'model.plugins.0.tasks.map.tap.bev_shape': [100, 100]}}
# MTPSL's and JTR's tiny configs are sized for a 50x50 BEV
rows = [row for row in _base_.rows if row['name'] not in ('mtpsl', 'jtr')]
