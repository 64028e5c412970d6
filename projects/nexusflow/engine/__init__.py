"""Training-loop parts of the plugin: hooks and helpers (phase-2 freezing)."""
from .freeze_hook import FreezeModulesHook
from .visualization_hook import TrackMapVisualizationHook  # noqa: F401

__all__ = ['FreezeModulesHook']
