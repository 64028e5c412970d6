# Runtime of the NYUv2 / MTAN configs: the project's shared runtime, checkpoints every 20 epochs (the last 2 kept),
# mmengine's plain visualiser (scalars) without the BEV track / map drawing hook.
_base_ = ['../../uniad_nexusflow/_base_/default_runtime.py']
default_hooks = dict(checkpoint=dict(interval=20, max_keep_ckpts=2), visualization=None)
visualizer = dict(type='Visualizer')
