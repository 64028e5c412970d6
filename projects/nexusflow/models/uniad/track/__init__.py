"""TrackFormer of the UniAD stage-1 baseline: decoder, QIM, memory bank, runtime tracker, clip matcher, losses."""
from .box_coder import CODE_SIZE, TrackBoxCoder
from .clip_matcher import ClipMatcher
from .decoder import TrackDecoder, TrackDecoderLayer
from .geometry import ego_box_in_lidar, ego_velocity_in_lidar, propagate_reference_points
from .heatmap_init import HeatmapQueryInit
from .instances import EGO_ID, FREE_ID, TrackInstances
from .match_costs import TrackBoxL1Cost
from .memory_bank import TrackMemoryBank
from .qim import QueryInteractionModule
from .state import TrackState
from .targets import FrameTargets, clip_targets
from .track_head import UniADTrackHead
from .track_loss import TrackLoss
from .tracker import RuntimeTracker

__all__ = [
    'UniADTrackHead', 'HeatmapQueryInit', 'TrackDecoder', 'TrackDecoderLayer', 'QueryInteractionModule',
    'TrackMemoryBank', 'RuntimeTracker', 'ClipMatcher', 'TrackBoxL1Cost', 'TrackLoss', 'TrackBoxCoder', 'TrackInstances', 'TrackState',
    'FrameTargets', 'clip_targets', 'CODE_SIZE', 'FREE_ID', 'EGO_ID', 'propagate_reference_points',
    'ego_velocity_in_lidar', 'ego_box_in_lidar'
]
