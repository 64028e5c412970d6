"""Data side of the plugin: info conversion, the track + map clip dataset, geo-split, transforms, collate, samplers."""
from . import samplers
from .collate import clip_collate
from .converter import CAMERAS, CLASSES, INFO_VERSION, create_nuscenes_infos
from .frames import lidar2global_of, pose_of, relative_pose, stack_relative_poses, timestamp_of
from .geo_split import GeoSplitDataset
from .map_rasterizer import MAP_CLASSES, MapRasterizer
from .nuscenes_track_map import NuScenesTrackMapDataset
from .samplers import *  # noqa: F401,F403
from .transforms import (LoadMapAnnotations, LoadMultiViewImages, LoadTrackAnnotations3D, PackTrackMapInputs,
                         ResizeMultiViewImages, TrackObjectRangeFilter)

__all__ = ['create_nuscenes_infos', 'CLASSES', 'CAMERAS', 'INFO_VERSION', 'MAP_CLASSES', 'MapRasterizer',
           'NuScenesTrackMapDataset', 'GeoSplitDataset', 'clip_collate', 'LoadMultiViewImages',
           'ResizeMultiViewImages', 'LoadTrackAnnotations3D', 'TrackObjectRangeFilter', 'LoadMapAnnotations',
           'PackTrackMapInputs', 'lidar2global_of', 'pose_of', 'relative_pose', 'stack_relative_poses', 'timestamp_of']
__all__ += samplers.__all__
