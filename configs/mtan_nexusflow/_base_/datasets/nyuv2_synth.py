# The synthetic NYUv2-like set (same format and code path), sized for CPUs. Create it with:
#   python tools/create_data.py nyuv2-synthetic --out-dir data/nyuv2-synth --num-train 96 --num-val 32 \
#       --img-size 64 96
_base_ = ['./nyuv2.py']
data_root = 'data/nyuv2-synth/'
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
