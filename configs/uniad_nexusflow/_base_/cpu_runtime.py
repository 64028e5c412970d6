# Runtime of the tiny CPU configs: gloo for multi-process CPU runs, frequent logging.
_base_ = ['./default_runtime.py']
default_hooks = dict(logger=dict(interval=10))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
