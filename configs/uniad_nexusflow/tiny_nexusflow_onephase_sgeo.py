# Tiny NexusFlow, one-phase, S-Geo, on the synthetic set.
_base_ = ['./tiny_uniad_sgeo.py', './_base_/plugins/nexusflow_tiny.py']
model = dict(plugins=[_base_.nexusflow])
