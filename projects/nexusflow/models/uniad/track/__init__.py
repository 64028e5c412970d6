"""TrackFormer of the UniAD stage-1 baseline: decoder, QIM, memory bank, runtime tracker, clip matcher, losses."""
from .box_coder import CODE_SIZE, TrackBoxCoder, inverse_sigmoid
from .clip_matcher import ClipMatcher
from .decoder import TrackDecoder, TrackDecoderLayer
from .deform_attn import BEVDeformableAttention
from .geometry import (ego_box_in_lidar, ego_velocity_in_lidar, lidar2global_of, propagate_reference_points,
                       relative_transform)
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
    'UniADTrackHead', 'TrackDecoder', 'TrackDecoderLayer', 'BEVDeformableAttention', 'QueryInteractionModule',
    'TrackMemoryBank', 'RuntimeTracker', 'ClipMatcher', 'TrackBoxL1Cost', 'TrackLoss', 'TrackBoxCoder',
    'TrackInstances', 'TrackState', 'FrameTargets', 'clip_targets', 'CODE_SIZE', 'FREE_ID', 'EGO_ID',
    'inverse_sigmoid', 'lidar2global_of', 'relative_transform', 'propagate_reference_points',
    'ego_velocity_in_lidar', 'ego_box_in_lidar'
]
