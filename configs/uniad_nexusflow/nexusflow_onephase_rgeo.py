# NexusFlow, one-phase, reversed geo-split.
_base_ = ['./uniad_rgeo.py', './_base_/plugins/nexusflow.py']
model = dict(plugins=[_base_.nexusflow])
