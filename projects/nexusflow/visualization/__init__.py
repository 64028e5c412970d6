"""The plugin's mmengine visualiser: ``TrackMapLocalVisualizer`` (BEV tracks and map masks, camera projections)."""
from .track_map_visualizer import DEFAULT_PC_RANGE, VIS_TASKS, TrackMapLocalVisualizer, check_vis_task

__all__ = ['TrackMapLocalVisualizer', 'VIS_TASKS', 'DEFAULT_PC_RANGE', 'check_vis_task']
