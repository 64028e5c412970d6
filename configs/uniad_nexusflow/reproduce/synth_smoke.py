# A 15-minute check of the reproduction pipeline (not a result): tiny sets, one epoch per stage, three rows.
#   python tools/reproduce.py configs/uniad_nexusflow/reproduce/synth_smoke.py --out-dir work_dirs/reproduce/smoke
_base_ = ['./synth_geo_table.py']
data = dict(root='data/reproduce/smoke', scenes_per_city=2, samples_per_scene=6)
pretrain = dict(data=dict(root='data/reproduce/smoke-pretrain', scenes_per_city=2, samples_per_scene=6),
                config='configs/uniad_nexusflow/reproduce/tiny_pretrain_track.py')
_one = {'train_cfg.max_epochs': 1, 'param_scheduler.1.end': 1, 'param_scheduler.1.T_max': 1}
_cfg = 'configs/uniad_nexusflow/'
rows = [
    dict(name='full', label='Full supervision (oracle)', config=_cfg + 'tiny_uniad_full.py', seeds=1, options=_one),
    dict(name='baseline', label='Baseline (PS-MTL)', config=_cfg + 'tiny_uniad_sgeo.py', seeds=1, options=_one),
    dict(name='nexusflow_2p', label='NexusFlow two-phase', config=_cfg + 'tiny_nexusflow_twophase_sgeo.py', seeds=1,
         init='baseline', options=_one),
]
comparisons = [dict(name='Geo-split gap', reference='full', row='baseline',
                    metrics=_base_.unlabelled_city_metrics)]
