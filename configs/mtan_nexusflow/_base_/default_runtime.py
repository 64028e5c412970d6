# Runtime of the NYUv2 / MTAN configs: the project's shared runtime (mmengine's plain visualiser: scalars only),
# checkpoints every 20 epochs (the last 2 kept).
_base_ = ['../../_base_/default_runtime.py']
default_hooks = dict(checkpoint=dict(interval=20, max_keep_ckpts=2))
