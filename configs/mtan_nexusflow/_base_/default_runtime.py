# Runtime of the NYUv2 / MTAN configs: the project's shared runtime, checkpoints every 20 epochs (the last 2 kept),
# mmengine's plain visualiser (scalars) without the BEV track / map drawing hook (mmengine refuses a default hook set
# to None unless it is one of its own, so the hooks are listed again without it).
_base_ = ['../../uniad_nexusflow/_base_/default_runtime.py']
default_hooks = dict(
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='NexusFlowAtomicCheckpointHook', interval=20, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
visualizer = dict(type='Visualizer')
