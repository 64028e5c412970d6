"""Training-loop parts of the plugin: hooks and helpers (phase-2 freezing, atomic checkpoints, non-finite policy,
the initialisation check)."""
from .checkpoint_hook import AtomicCheckpointHook
from .freeze_hook import FreezeModulesHook
from .init_check import UninitialisedFrozenError, check_training_init, missing_load_from_error
from .nonfinite_loop import NonFiniteGuardTrainLoop
from .visualization_hook import TrackMapVisualizationHook  # noqa: F401

__all__ = ['AtomicCheckpointHook', 'FreezeModulesHook', 'NonFiniteGuardTrainLoop', 'check_training_init',
           'missing_load_from_error', 'UninitialisedFrozenError']
