# NexusFlow, one-phase: trained jointly from scratch with the alignment loss active from the start (S-Geo).
_base_ = ['./uniad_sgeo.py', './_base_/plugins/nexusflow.py']
model = dict(plugins=[_base_.nexusflow])
