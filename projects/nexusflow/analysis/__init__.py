"""Analysis of trained models: MMD, PCA scree and t-SNE of task features / NexusFlow latents, BEV visualisation."""
from .bev_render import BEVGrid, box_bev_corners, draw_boxes, draw_map, render_bev_panel, track_colour
from .features import FeatureCollection, FeatureProbe, collect_features, default_taps
from .frame_render import FrameRecord, frame_filename, frame_record, record_grid, render_frame
from .mmd import mmd
from .plots import plot_scree, plot_tsne, tsne_embedding
from .report import analyze_collection, format_table
from .stats import components_for_variance, pca_scree, split_mmd, subset_mmd

__all__ = [
    'mmd', 'subset_mmd', 'split_mmd', 'pca_scree', 'components_for_variance', 'plot_scree', 'plot_tsne',
    'tsne_embedding', 'FeatureProbe', 'FeatureCollection', 'collect_features', 'default_taps',
    'analyze_collection', 'format_table', 'BEVGrid', 'box_bev_corners', 'draw_boxes', 'draw_map',
    'render_bev_panel', 'track_colour', 'FrameRecord', 'frame_record', 'record_grid', 'render_frame',
    'frame_filename'
]
