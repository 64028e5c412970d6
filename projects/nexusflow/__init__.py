"""NexusFlow for UniAD: an MMDetection3D 1.x plugin.

Importing the package registers every dataset, transform, model, metric and hook in the mmdet3d registries
(configs do it through ``custom_imports=dict(imports=['projects.nexusflow'])``).
"""
from . import analysis, datasets, engine, evaluation, models  # noqa: F401
from . import nyuv2  # noqa: F401
