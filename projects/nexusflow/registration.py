"""Import every part of the plugin, registering its datasets, transforms, models, metrics, hooks and visualiser.

Configs load it through ``custom_imports=dict(imports=['projects.nexusflow.registration'])``.
"""
from . import analysis, core, datasets, engine, evaluation, nyuv2, visualization  # noqa: F401
from .models import layers, nexusflow, ops, psmtl, uniad  # noqa: F401
