# The alignment-collapse remedy with a gradient on the tiny two-phase S-Geo row: a VICReg-style hinge keeps the
# per-dimension std of every task's embedding and latent above half its early value (NexusFlow spread_floor; the
# std is taken over the current clip and the taps of the last 8 clips, re-encoded with the current plug-in).
_base_ = ['./tiny_nexusflow_twophase_sgeo.py']
nexusflow = _base_.nexusflow
nexusflow.spread_floor = dict(ratio=0.5, loss_weight=1.0, queue_size=8, warmup=10)
model = dict(plugins=[nexusflow])
