"""The plugin's dependency-free core: what the baseline, the plug-ins, the NYUv2 models and the analysis share.

- ``frames.py``: frame geometry (``lidar2global``, relative poses, timestamps) from the per-frame metainfo;
- ``taps.py`` / ``tap_adapters.py``: the tap framework (``TapPlugin`` reads a host through forward hooks, adapters
  turn a tapped output into a ``TapOutput``);
- ``head_tap.py``: the head-tap contract (a head's ``pred_tap``, the keys a plug-in requests from it at build
  time, the adapter that reads it);
- ``freeze.py``: build-time freezing of named sub-modules (``frozen_modules``).

Nothing here imports another package of the plugin; every other package may import this one.
"""
from .frames import lidar2global_of, pose_of, relative_pose, stack_relative_poses, timestamp_of
from .freeze import freeze_modules
from .head_tap import PredictionTap, PredictionTapAdapter
from .tap_adapters import (BaseTapAdapter, BEVTapAdapter, FeatureMapTapAdapter, QueryTapAdapter, TapOutput,
                           build_tap_adapter)
from .taps import TapPlugin, resolve_module

__all__ = ['lidar2global_of', 'pose_of', 'relative_pose', 'stack_relative_poses', 'timestamp_of', 'freeze_modules',
           'PredictionTap', 'PredictionTapAdapter',
           'BaseTapAdapter', 'BEVTapAdapter', 'FeatureMapTapAdapter', 'QueryTapAdapter', 'TapOutput',
           'build_tap_adapter', 'TapPlugin', 'resolve_module']
