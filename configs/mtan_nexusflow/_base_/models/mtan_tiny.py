# MTAN at 1/8 width (filters 8-16-32-64-64) for the CPU configs on the synthetic set.
_base_ = ['./mtan_segnet.py']
model = dict(backbone=dict(width=0.125))
