"""Synthetic nuScenes: a rendered two-city world written in the exact nuScenes v1.0 on-disk format.

Entry point: :func:`generate_synthetic_nuscenes` (also ``tools/create_data.py synthetic``). Modules, in data-flow
order: ``styles`` (per-city rules and looks), ``road_network`` / ``intersections`` / ``layers`` (the street grid),
``map_expansion`` (map JSON), ``raster`` (ground texture, basemap, semantic prior), ``traffic`` (ego and movers),
``annotations`` and ``tables`` (nuScenes records), ``rig`` / ``camera_model`` / ``renderer`` (images), ``can_bus``
(CAN bus pose messages), ``generator`` (orchestration), with ``geometry`` and ``tokens`` as helpers.
"""
from .generator import LOCATIONS, SPLIT_NAMES, generate_synthetic_nuscenes

__all__ = ['generate_synthetic_nuscenes', 'LOCATIONS', 'SPLIT_NAMES']
