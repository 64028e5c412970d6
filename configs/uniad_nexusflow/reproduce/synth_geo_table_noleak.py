# synth_geo_table.py with a pretraining chain that has not seen Boston's boxes (the S-Geo rows have no track labels
# in Boston), to tell whether the shared pretraining hides the geo-split's tracking gap:
#   python tools/reproduce.py configs/uniad_nexusflow/reproduce/synth_geo_table_noleak.py
# Only S-Geo rows are meaningful here (an R-Geo row would pretrain on the city it has no track labels for). Measured
# (docs/reproduction/README.md, fourth and fifth sessions): full, baseline, mtpsl, jtr, phase2_control, nexusflow_2p,
# spread_floor; not yet: nexusflow_1p.
_base_ = ['./synth_geo_table.py']
pretrain = dict(
    config='configs/uniad_nexusflow/reproduce/tiny_pretrain_track_sgeo.py',
    then=[dict(name='clips', config='configs/uniad_nexusflow/reproduce/tiny_pretrain_track_clips_sgeo.py')])
_cfg = 'configs/uniad_nexusflow/'
rows = [
    dict(name='full', label='Full supervision (oracle)', config=_cfg + 'tiny_uniad_full.py', seeds=3,
         options={{_base_.phase1}}, group='S-Geo'),
    dict(name='baseline', label='Baseline (PS-MTL)', config=_cfg + 'tiny_uniad_sgeo.py', seeds=3,
         options={{_base_.phase1}}, group='S-Geo'),
    dict(name='mtpsl', label='MTPSL', config=_cfg + 'tiny_mtpsl_sgeo.py', seeds=1, options={{_base_.phase1}},
         group='S-Geo'),
    dict(name='jtr', label='JTR', config=_cfg + 'tiny_jtr_sgeo.py', seeds=1, options={{_base_.phase1}}, group='S-Geo'),
    dict(name='nexusflow_1p', label='NexusFlow one-phase', config=_cfg + 'tiny_nexusflow_onephase_sgeo.py', seeds=1,
         options={{_base_.phase1}}, group='S-Geo'),
    dict(name='phase2_control', label='Phase-2 control (no plug-in)',
         config=_cfg + 'tiny_uniad_twophase_control_sgeo.py', seeds=3, init='baseline', options={{_base_.phase2}},
         group='S-Geo'),
    dict(name='nexusflow_2p', label='NexusFlow two-phase', config=_cfg + 'tiny_nexusflow_twophase_sgeo.py', seeds=3,
         init='baseline', options={{_base_.phase2}}, group='S-Geo'),
    dict(name='spread_floor', label='NexusFlow + spread floor',
         config=_cfg + 'tiny_nexusflow_twophase_sgeo_spreadfloor.py', seeds=1, init='baseline',
         options={{_base_.phase2}}, group='S-Geo'),
]
