# Tiny NexusFlow (pairwise alignment) on the clustering protocol.
_base_ = ['./tiny_mtan_nexusflow_center.py']
nexusflow = _base_.nexusflow
nexusflow.align_loss = 'pairwise'
model = dict(plugins=[nexusflow])
