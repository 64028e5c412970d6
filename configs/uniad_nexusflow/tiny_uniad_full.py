# Tiny UniAD stage-1 on the synthetic set with full supervision (the upper bound): every sample has both labels.
_base_ = ['./_base_/cpu_runtime.py', './_base_/datasets/synth_track_map.py', './_base_/models/uniad_tiny.py',
          './_base_/schedules/adamw_tiny.py']
train_dataloader = dict(dataset=dict(split='full'))
