# Tiny NexusFlow (center alignment) on the clustering protocol.
_base_ = ['./tiny_mtan_baseline.py', './_base_/plugins/nexusflow_mtan_tiny.py']
model = dict(plugins=[_base_.nexusflow])
