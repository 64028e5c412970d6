"""Training-loop parts of the plugin: hooks and helpers (phase-2 freezing, the initialisation check)."""
from .freeze_hook import FreezeModulesHook, freeze_modules
from .init_check import UninitialisedFrozenError, check_training_init
from .visualization_hook import TrackMapVisualizationHook  # noqa: F401

__all__ = ['FreezeModulesHook', 'freeze_modules', 'check_training_init', 'UninitialisedFrozenError']
