"""PS-MTL baselines MTPSL and JTR, on task rasters read through head tap points: BEV rasters of UniAD tracking +
mapping, dense image rasters of the NYUv2 / MTAN heads."""
from .bev_render import (BEVCanvas, render_box_occupancy, render_centre_heatmap, semantic_masks, splat_max,
                         window_cells)
from .dense_raster import DenseTaskRaster, hard_gumbel_one_hot, max_scaled
from .film import FiLMConv, pair_code_index, pair_codes
from .joint_autoencoder import JointTaskAutoEncoder
from .jtr import JTR
from .mtpsl import MTPSL
from .pair_mapper import TaskPairMapper, segnet_channels
from .raster_plugin import RasterPlugin, TaskRasters, cosine_distance
from .task_rasters import MapRaster, TaskRaster, TrackRaster, canvas_from_samples

__all__ = [
    'BEVCanvas', 'render_centre_heatmap', 'render_box_occupancy', 'semantic_masks', 'splat_max', 'window_cells',
    'FiLMConv', 'pair_code_index', 'pair_codes', 'TaskPairMapper', 'segnet_channels', 'JointTaskAutoEncoder',
    'RasterPlugin', 'DenseTaskRaster', 'hard_gumbel_one_hot', 'max_scaled',
    'TaskRasters', 'cosine_distance', 'TaskRaster', 'TrackRaster', 'MapRaster',
    'canvas_from_samples', 'MTPSL', 'JTR'
]
