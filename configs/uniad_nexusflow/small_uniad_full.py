# Mid-size UniAD stage-1 on nuScenes with full supervision (every sample has both labels): 800x450 images, 100x100
# BEV, ResNet-50, clips of 3 frames, the UniAD stage-1 schedule. Costs: tools/benchmark.py (--synthetic-data measures
# them without nuScenes on disk).
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/nus_track_map_small.py', './_base_/models/uniad_small.py',
          './_base_/schedules/adamw_cosine_6e.py']
train_dataloader = dict(dataset=dict(split='full'))
