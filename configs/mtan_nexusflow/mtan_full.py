# Table 4 "Full-supervision": MTAN on NYUv2 with every label of every training image.
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/nyuv2.py', './_base_/models/mtan_segnet.py',
          './_base_/schedules/adam_step_200e.py']
