"""UniAD stage-1 map head (MapFormer, Panoptic-SegFormer style) over one BEV level."""
from .assigners import FilterHungarianAssigner
from .decoder import MapDecoder, MapDecoderLayer, refine_boxes
from .encoder import MapEncoder, MapEncoderLayer, bev_reference_points
from .losses import MapCriterion
from .map_head import UniADMapHead
from .mask_head import MapMaskDecoder, MaskAttention, MaskDecoderBlock
from .postprocess import mask_quality, panoptic_postprocess, paste_stuff, paste_things
from .structures import MapTargets, batch_targets, sample_targets
from .transformer import MapTransformer

__all__ = [
    'UniADMapHead', 'MapTransformer', 'MapEncoder', 'MapEncoderLayer', 'MapDecoder', 'MapDecoderLayer',
    'MapMaskDecoder', 'MaskAttention', 'MaskDecoderBlock', 'FilterHungarianAssigner',
    'MapCriterion', 'MapTargets', 'batch_targets', 'sample_targets', 'panoptic_postprocess', 'paste_things',
    'paste_stuff', 'mask_quality', 'refine_boxes', 'bev_reference_points'
]
