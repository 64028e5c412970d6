"""BEVFormer encoder of the UniAD stage-1 baseline (issue #4): TSA, SCA, encoder layer and encoder."""
from .deformable_attention_3d import MSDeformableAttention3D
from .encoder import BEVFormerEncoder
from .encoder_layer import BEVFormerLayer
from .spatial_cross_attention import CameraContext, CameraHits, SpatialCrossAttention, rebatch_camera_hits
from .temporal_self_attention import TemporalContext, TemporalSelfAttention, sample_bev

__all__ = [
    'BEVFormerEncoder', 'BEVFormerLayer', 'TemporalSelfAttention', 'TemporalContext', 'SpatialCrossAttention',
    'MSDeformableAttention3D', 'CameraContext', 'CameraHits', 'rebatch_camera_hits', 'sample_bev'
]
