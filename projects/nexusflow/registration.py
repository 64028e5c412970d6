"""Import every part of the plugin, registering its datasets, transforms, models, metrics and hooks in mmdet3d.

Configs load it through ``custom_imports=dict(imports=['projects.nexusflow.registration'])``.
"""
from . import analysis, core, datasets, engine, evaluation, nyuv2  # noqa: F401
from .models import layers, nexusflow, ops, psmtl, uniad  # noqa: F401
