# Mid-size NexusFlow, one-phase, on ./small_uniad_full.py (both task losses and the alignment loss on every sample:
# the plug-in's highest cost). tools/benchmark.py small_uniad_full.py small_nexusflow_onephase_full.py
# --synthetic-data prints the overhead side by side.
_base_ = ['./small_uniad_full.py', './_base_/plugins/nexusflow_small.py']
model = dict(plugins=[_base_.nexusflow])
