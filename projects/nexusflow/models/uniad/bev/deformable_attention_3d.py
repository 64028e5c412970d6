"""Deformable attention of one query over one camera's multi-level features, from several pillar heights.

Follows ``MSDeformableAttention3D`` of OpenDriveLab/BEVFormer: every query carries ``D`` reference points (its
pillar's heights projected into the camera); ``num_points`` sampling points per head and level are split evenly over
the ``D`` reference points (point ``p`` belongs to reference ``p % D``, BEVFormer's layout, so its checkpoints load
unchanged). No output projection here: ``SpatialCrossAttention`` applies one after averaging the cameras.
"""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import check_attention_heads, init_deformable_projections, xavier_linear_
from ...ops import multi_scale_deformable_attn


@MODELS.register_module('UniADMSDeformableAttention3D')
class MSDeformableAttention3D(BaseModule):
    """Multi-level deformable attention with ``num_anchors`` reference points per query.

    Args:
        embed_dims (int): channels ``C`` of queries and features.
        num_heads (int): attention heads; must divide ``embed_dims``.
        num_levels (int): feature levels.
        num_points (int): sampling points per head and level, over all anchors; a multiple of ``num_anchors``
            (BEVFormer: 8 points for 4 pillar heights, i.e. 2 per height).
        num_anchors (int): reference points per query (pillar heights).
        im2col_step (int): batch chunk of the CUDA kernel.
        use_cuda_kernel (bool): use mmcv's kernel on CUDA tensors.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 8,
                 num_anchors: int = 4, im2col_step: int = 64, use_cuda_kernel: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_attention_heads(embed_dims, num_heads)
        if num_anchors < 1 or num_points % num_anchors != 0:
            raise ValueError(f'num_points ({num_points}) must be a multiple of the pillar heights ({num_anchors}); '
                             'it counts the sampling points of all heights together, as in BEVFormer')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.num_anchors = num_anchors
        self.im2col_step = im2col_step
        self.use_cuda_kernel = use_cuda_kernel
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        init_deformable_projections(self.sampling_offsets, self.attention_weights, self.num_heads,
                                    self.num_levels, self.num_points)
        xavier_linear_(self.value_proj)

    def forward(self, query: Tensor, value: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor) -> Tensor:
        """Sample each query's camera features around its projected pillar points.

        Args:
            query (Tensor): ``[M, K, C]`` queries (``M`` = batch x cameras, ``K`` re-batched BEV queries).
            value (Tensor): ``[M, L, C]`` the camera's features, levels flattened row-major one after another.
            reference_points (Tensor): ``[M, K, D, 2]`` unit image locations ``(x, y)`` of the ``D`` pillar points
                (``(0, 0)`` top-left, ``(1, 1)`` bottom-right of the padded input image).
            spatial_shapes (Tensor): ``[num_levels, 2]`` long ``(h, w)`` of each level.
            level_start_index (Tensor): ``[num_levels]`` long start of each level in ``L``.

        Returns:
            Tensor: ``[M, K, C]`` attended features, dtype of ``value`` after projection.
        """
        batch, num_queries, channels = query.shape
        if reference_points.shape[2] != self.num_anchors:
            raise ValueError(f'reference_points has {reference_points.shape[2]} points per query, '
                             f'expected num_anchors={self.num_anchors}')
        value = self.value_proj(value).view(batch, value.shape[1], self.num_heads, channels // self.num_heads)
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        offsets = self.sampling_offsets(query).view(batch, num_queries, heads, levels,
                                                    points // self.num_anchors, self.num_anchors, 2)
        offsets = offsets / spatial_shapes.flip(-1).to(offsets.dtype)[None, None, None, :, None, None, :]
        locations = reference_points[:, :, None, None, None, :, :] + offsets  # [M, K, heads, L, P/D, D, 2]
        locations = locations.reshape(batch, num_queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, num_queries, heads, levels * points).softmax(-1)
        weights = weights.view(batch, num_queries, heads, levels, points)
        return multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations, weights,
                                           self.im2col_step, self.use_cuda_kernel)
