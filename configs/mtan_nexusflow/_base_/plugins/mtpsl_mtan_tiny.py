# MTPSL sized for the 1/8-width MTAN (bottleneck 64 x H/32 x W/32): the same mapping network at 1/8 width.
_base_ = ['./mtpsl_mtan.py']
mtpsl = _base_.mtpsl
mtpsl.feat_channels = 64
mtpsl.mapper.channels = (8, 8, 8, 16, 16, 32, 32, 32, 64, 64, 64, 64, 64)  # = segnet_channels((8, 16, 32, 64, 64))
