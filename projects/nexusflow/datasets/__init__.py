"""Data side of the plugin: info conversion, the track + map clip dataset, geo-split, transforms, collate, samplers."""
from . import samplers
from .collate import clip_collate
from .converter import CAMERAS, CLASSES, INFO_VERSION, create_nuscenes_infos
from .geo_split import GeoSplitDataset
from .map_rasterizer import MAP_CLASSES, MapRasterizer
from .nuscenes_track_map import NuScenesTrackMapDataset
from .samplers import *  # noqa: F401,F403
from .transforms import (LoadMapAnnotations, LoadMultiViewImages, LoadTrackAnnotations3D, PackTrackMapInputs,
                         ResizeMultiViewImages, TrackObjectRangeFilter)

__all__ = ['create_nuscenes_infos', 'CLASSES', 'CAMERAS', 'INFO_VERSION', 'MAP_CLASSES', 'MapRasterizer',
           'NuScenesTrackMapDataset', 'GeoSplitDataset', 'clip_collate', 'LoadMultiViewImages',
           'ResizeMultiViewImages', 'LoadTrackAnnotations3D', 'TrackObjectRangeFilter', 'LoadMapAnnotations',
           'PackTrackMapInputs']
__all__ += samplers.__all__
