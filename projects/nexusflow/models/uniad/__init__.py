"""The UniAD stage-1 (track + map) baseline: detector, data preprocessor, BEVFormer encoder, track and map heads."""
from . import bev, map, track  # noqa: F401  (registers the encoder and the heads)
from .data_preprocessor import TrackMapDataPreprocessor
from .detector import UniADTrackMap
from .grid_mask import GridMask
from .temporal_state import TemporalState

__all__ = ['UniADTrackMap', 'TrackMapDataPreprocessor', 'GridMask', 'TemporalState']
