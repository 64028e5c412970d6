# Miniature reproduction of the 2-task NexusFlow nuScenes tables on synthetic nuScenes (tiny UniAD stage 1, CPU):
#   python tools/reproduce.py configs/uniad_nexusflow/reproduce/synth_geo_table.py [--rows ...] [--seeds ...]
# The rows train on the synth_train scenes of `data` and are evaluated on its held-out synth_val scenes. They start
# from a shared pretraining stage on a separate set (tiny_pretrain_track.py on single frames, then
# tiny_pretrain_track_clips.py on 3-frame clips) with the image backbone frozen, as UniAD stage 1 starts from
# BEVFormer. Two-phase rows and their control start from the baseline run of the same seed.
data = dict(root='data/reproduce/nuscenes-synth-16', scenes_per_city=16, samples_per_scene=10, seed=0,
            img_size=(224, 128))
pretrain = dict(
    data=dict(root='data/reproduce/nuscenes-synth-pretrain', scenes_per_city=24, samples_per_scene=10, seed=1000,
              img_size=(224, 128)),
    config='configs/uniad_nexusflow/reproduce/tiny_pretrain_track.py',
    then=[dict(name='clips', config='configs/uniad_nexusflow/reproduce/tiny_pretrain_track_clips.py')])

phase1_epochs = 3
phase2_epochs = 2
# every row: the pretrained image backbone frozen (BN statistics too), the pretrained neck, BEV encoder and track head
# fine-tuned at a tenth of the learning rate (the new map head and plug-ins at the full rate), the pretraining's
# heatmap-initialised track queries placed away from carried tracks, no validation inside training
row_options = {'model.img_backbone.frozen_stages': 4, 'model.img_backbone.norm_eval': True,
               'model.track_head.heatmap_init.loss_weight': 10.0, 'model.track_head.heatmap_init.track_radius': 1,
               'optim_wrapper.paramwise_cfg.custom_keys.img_neck.lr_mult': 0.1,
               'optim_wrapper.paramwise_cfg.custom_keys.bev_encoder.lr_mult': 0.1,
               'optim_wrapper.paramwise_cfg.custom_keys.track_head.lr_mult': 0.1,
               'train_cfg.val_interval': 1000}
phase1 = {'train_cfg.max_epochs': phase1_epochs, 'param_scheduler.1.end': phase1_epochs,
          'param_scheduler.1.T_max': phase1_epochs}
phase2 = {'train_cfg.max_epochs': phase2_epochs, 'param_scheduler.1.end': phase2_epochs,
          'param_scheduler.1.T_max': phase2_epochs}

_cfg = 'configs/uniad_nexusflow/'
rows = [
    dict(name='full', label='Full supervision (oracle)', config=_cfg + 'tiny_uniad_full.py', seeds=3,
         options=phase1, group='S-Geo'),
    dict(name='baseline', label='Baseline (PS-MTL)', config=_cfg + 'tiny_uniad_sgeo.py', seeds=3, options=phase1,
         group='S-Geo'),
    dict(name='mtpsl', label='MTPSL', config=_cfg + 'tiny_mtpsl_sgeo.py', seeds=1, options=phase1, group='S-Geo'),
    dict(name='jtr', label='JTR', config=_cfg + 'tiny_jtr_sgeo.py', seeds=1, options=phase1, group='S-Geo'),
    dict(name='nexusflow_1p', label='NexusFlow one-phase', config=_cfg + 'tiny_nexusflow_onephase_sgeo.py', seeds=1,
         options=phase1, group='S-Geo'),
    dict(name='phase2_control', label='Phase-2 control (no plug-in)', config=_cfg + 'tiny_uniad_twophase_control_sgeo.py',
         seeds=3, init='baseline', options=phase2, group='S-Geo'),
    dict(name='nexusflow_2p', label='NexusFlow two-phase', config=_cfg + 'tiny_nexusflow_twophase_sgeo.py', seeds=3,
         init='baseline', options=phase2, group='S-Geo'),
    dict(name='mlp_noinv', label='NexusFlow MLP w/o Inv', config=_cfg + 'tiny_nexusflow_twophase_sgeo_mlpnoinv.py',
         seeds=1, init='baseline', options=phase2, group='S-Geo'),
    dict(name='center', label='NexusFlow centre loss', config=_cfg + 'tiny_nexusflow_twophase_sgeo_center.py',
         seeds=1, init='baseline', options=phase2, group='S-Geo'),
    dict(name='spread_floor', label='NexusFlow + spread floor',
         config=_cfg + 'tiny_nexusflow_twophase_sgeo_spreadfloor.py', seeds=3, init='baseline', options=phase2,
         group='S-Geo'),
    dict(name='latent_norm', label='NexusFlow + running latent norm',
         config=_cfg + 'tiny_nexusflow_twophase_sgeo_latentnorm.py', seeds=1, init='baseline', options=phase2,
         group='S-Geo'),
    dict(name='rgeo_baseline', label='R-Geo baseline', config=_cfg + 'tiny_uniad_rgeo.py', seeds=1, options=phase1,
         group='R-Geo'),
    dict(name='rgeo_nexusflow_2p', label='R-Geo NexusFlow two-phase',
         config=_cfg + 'tiny_nexusflow_twophase_rgeo.py', seeds=1, init='rgeo_baseline', options=phase2,
         group='R-Geo'),
]

# What the report checks (tools/reproduce.py, "Comparisons"): under S-Geo the city without track labels is Boston and
# the one without map labels Singapore. Full must beat the Baseline there by more than 3 seed stds of either row (the
# protocol discriminates); phase-2 rows start from the Baseline's checkpoint of the same seed, so NexusFlow two-phase
# is compared with its phase-2 control seed by seed.
unlabelled_city_metrics = ['track/boston/amota', 'track/boston/recall', 'map/singapore/lanes_iou',
                           'map/singapore/drivable_iou', 'map/singapore/divider_iou']
comparisons = [
    dict(name='Geo-split gap', reference='full', row='baseline', metrics=unlabelled_city_metrics),
    dict(name='NexusFlow two-phase against its control', reference='phase2_control', row='nexusflow_2p',
         metrics=unlabelled_city_metrics, paired=True),
]
