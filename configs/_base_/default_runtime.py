# Runtime shared by every config of the project (nuScenes and NYUv2); each family adds its visualiser and hooks
# (configs/uniad_nexusflow/_base_/default_runtime.py, configs/mtan_nexusflow/_base_/default_runtime.py).
default_scope = 'mmdet3d'
custom_imports = dict(imports=['projects.nexusflow.registration'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # atomic writes; checkpoints load with torch's weights_only=True (projects/nexusflow/engine/)
    checkpoint=dict(type='NexusFlowAtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
