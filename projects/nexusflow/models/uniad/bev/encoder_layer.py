"""One BEVFormer encoder layer: temporal self-attention, norm, spatial cross-attention, norm, FFN, norm.

Follows BEVFormer's ``BEVFormerLayer`` with ``operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn',
'norm')`` (post-norm; the positional encoding enters TSA only), written as a plain module instead of mmcv's
operation-order interpreter.
"""
from typing import Optional

from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import xavier_linear_
from .spatial_cross_attention import CameraContext, SpatialCrossAttention
from .temporal_self_attention import TemporalContext, TemporalSelfAttention


@MODELS.register_module('UniADBEVFormerLayer')
class BEVFormerLayer(BaseModule):
    """``TSA -> LayerNorm -> SCA -> LayerNorm -> FFN -> LayerNorm`` on the BEV queries.

    Args:
        embed_dims (int): channels ``C``.
        num_heads (int): heads of both attentions.
        num_levels (int): camera feature levels.
        num_points_in_pillar (int): pillar heights per BEV query.
        tsa_num_points (int): TSA sampling points per head and queue.
        sca_num_points (int): SCA sampling points per head and level over all pillar heights.
        ffn_dims (int): hidden channels of the FFN.
        dropout (float): dropout of the attentions and the FFN.
        use_cuda_kernel (bool): use mmcv's deformable-attention kernel on CUDA tensors.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4,
                 num_points_in_pillar: int = 4, tsa_num_points: int = 4, sca_num_points: int = 8,
                 ffn_dims: int = 512, dropout: float = 0.1, use_cuda_kernel: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.temporal_attn = TemporalSelfAttention(embed_dims, num_heads, tsa_num_points, dropout,
                                                   use_cuda_kernel=use_cuda_kernel)
        self.spatial_attn = SpatialCrossAttention(embed_dims, num_heads, num_levels, sca_num_points,
                                                  num_points_in_pillar, dropout, use_cuda_kernel=use_cuda_kernel)
        self.ffn = FFN(embed_dims=embed_dims, feedforward_channels=ffn_dims, num_fcs=2, ffn_drop=dropout,
                       add_identity=True)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))
        for module in self.ffn.modules():
            if isinstance(module, nn.Linear):
                xavier_linear_(module)

    def forward(self, query: Tensor, query_pos: Tensor, temporal: TemporalContext, camera: CameraContext) -> Tensor:
        """Refine the BEV queries once.

        Args:
            query (Tensor): ``[B, H*W, C]`` BEV queries, row-major cells.
            query_pos (Tensor): ``[B, H*W, C]`` learned BEV positional encoding.
            temporal (TemporalContext): previous BEV and TSA reference points.
            camera (CameraContext): camera features and the re-batched visible queries.

        Returns:
            Tensor: ``[B, H*W, C]`` refined queries.
        """
        query = self.norms[0](self.temporal_attn(query, query_pos, temporal))
        query = self.norms[1](self.spatial_attn(query, camera))
        return self.norms[2](self.ffn(query))
