"""Building blocks shared by the baseline and the plug-ins: the one deformable-attention module, the MLP builder and
the attention / initialisation helpers."""
from .attention_utils import check_attention_heads, init_deformable_projections, ring_offset_bias
from .deformable_attention import MSDeformAttn
from .mlp import build_mlp
from .weight_init import variance_preserving_init_, xavier_linear_, xavier_matrices_

__all__ = ['MSDeformAttn', 'build_mlp', 'check_attention_heads', 'init_deformable_projections', 'ring_offset_bias',
           'variance_preserving_init_', 'xavier_linear_', 'xavier_matrices_']
