# UniAD stage-1 with full supervision (the oracle row of Table 2): every sample has track and map labels.
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/nus_track_map.py', './_base_/models/uniad_stage1.py',
          './_base_/schedules/adamw_cosine_6e.py']
# Starts from BEVFormer-base converted for this project (README "Starting from BEVFormer / UniAD weights"); the
# frozen ResNet-101 needs it. Without the file, tools/train.py stops with the conversion command.
load_from = 'ckpts/bevformer_r101_dcn_24ep_nexusflow.pth'
train_dataloader = dict(dataset=dict(split='full'))
