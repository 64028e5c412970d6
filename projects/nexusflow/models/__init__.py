"""Models of the plugin: the UniAD baseline, the NexusFlow plug-in and the PS-MTL baselines."""
from . import layers, nexusflow, ops, psmtl, uniad  # noqa: F401  (registers every module)
