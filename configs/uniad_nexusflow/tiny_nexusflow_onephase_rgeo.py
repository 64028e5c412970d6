# Tiny NexusFlow, one-phase, R-Geo, on the synthetic set.
_base_ = ['./tiny_uniad_rgeo.py', './_base_/plugins/nexusflow_tiny.py']
model = dict(plugins=[_base_.nexusflow])
