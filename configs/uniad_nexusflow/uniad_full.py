# UniAD stage-1 with full supervision (the oracle row of Table 2): every sample has track and map labels.
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/nus_track_map.py', './_base_/models/uniad_stage1.py',
          './_base_/schedules/adamw_cosine_6e.py']
train_dataloader = dict(dataset=dict(split='full'))
