# Tiny MTAN (1/8 width) on the synthetic NYUv2-like set with full supervision; trains in about a minute on CPU
# (run with OMP_NUM_THREADS=1 on a busy machine: tiny convolutions lose more to thread contention than they gain).
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/nyuv2_synth.py', './_base_/models/mtan_tiny.py',
          './_base_/schedules/adam_tiny.py']
default_hooks = dict(logger=dict(interval=6), checkpoint=dict(interval=12))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
log_processor = dict(window_size=6)
