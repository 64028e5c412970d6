"""Deformable cross-attention of object queries over the single-level BEV.

Follows Deformable-DETR's ``MSDeformAttn`` and UniAD's ``CustomMSDeformableAttention`` with ``num_levels=1``:
offsets and weights are predicted from ``query + query_pos``, sampling goes through the plugin's shared
``multi_scale_deformable_attn`` op (mmcv CUDA kernel on CUDA tensors, the PyTorch path elsewhere). Changed: batch
first, one level only (the BEV), and the residual/dropout are part of this module as in UniAD.
"""
import math
from typing import Tuple

import torch
from mmengine.model import BaseModule, constant_init, xavier_init
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...ops import level_start_index_of, multi_scale_deformable_attn


@MODELS.register_module('UniADBEVDeformableAttention')
class BEVDeformableAttention(BaseModule):
    """Queries sample the BEV at ``num_points`` learned offsets per head around their reference point.

    Args:
        embed_dims (int): channels ``C`` of queries and BEV.
        num_heads (int): attention heads; must divide ``embed_dims``.
        num_points (int): sampling points per head.
        dropout (float): dropout on the attention output before the residual.
        use_cuda_kernel (bool): use mmcv's CUDA kernel for CUDA tensors (``False``: PyTorch path everywhere).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4, dropout: float = 0.1,
                 use_cuda_kernel: bool = True, init_cfg=None) -> None:
        super().__init__(init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims must be divisible by num_heads, got {embed_dims} and {num_heads}')
        self.embed_dims, self.num_heads, self.num_points = embed_dims, num_heads, num_points
        self.use_cuda_kernel = use_cuda_kernel
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.init_weights()

    def init_weights(self) -> None:
        """Deformable-DETR init: offsets start on a ring of directions (point ``k`` at radius ``k+1`` cells),
        uniform attention weights, xavier projections."""
        constant_init(self.sampling_offsets, 0.)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 2).repeat(1, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, -1, 1)
        self.sampling_offsets.bias.data = grid.flatten()
        constant_init(self.attention_weights, val=0., bias=0.)
        xavier_init(self.value_proj, distribution='uniform', bias=0.)
        xavier_init(self.output_proj, distribution='uniform', bias=0.)

    def forward(self, query: Tensor, query_pos: Tensor, reference_points: Tensor, bev: Tensor,
                bev_hw: Tuple[int, int]) -> Tensor:
        """Attend from queries to the BEV; returns ``query + dropout(attention)``.

        Args:
            query (Tensor): ``[B, N, C]`` query features.
            query_pos (Tensor): ``[B, N, C]`` query positional embedding, added before offsets/weights.
            reference_points (Tensor): ``[B, N, 2]`` ``(x, y)`` in ``[0, 1]``: ``x`` along the BEV columns (LiDAR
                x), ``y`` along the rows (LiDAR y); ``0``/``1`` are the range borders, cell ``(i, j)``'s centre is
                ``((j + 0.5) / W, (i + 0.5) / H)``. Points outside read zeros.
            bev (Tensor): ``[B, H*W, C]`` BEV features, row-major (row ``i`` <-> LiDAR y, column ``j`` <-> x).
            bev_hw (tuple[int, int]): ``(H, W)``.

        Returns:
            Tensor: ``[B, N, C]``.
        """
        bs, num_query, _ = query.shape
        height, width = bev_hw
        if bev.shape[1] != height * width:
            raise ValueError(f'bev has {bev.shape[1]} cells, expected H*W = {height}*{width}')
        spatial_shapes = torch.tensor([[height, width]], dtype=torch.long, device=bev.device)
        value = self.value_proj(bev).view(bs, height * width, self.num_heads, -1)
        attn_query = query + query_pos
        offsets = self.sampling_offsets(attn_query).view(bs, num_query, self.num_heads, 1, self.num_points, 2)
        weights = self.attention_weights(attn_query).view(bs, num_query, self.num_heads, self.num_points)
        weights = weights.softmax(-1).view(bs, num_query, self.num_heads, 1, self.num_points)
        normalizer = offsets.new_tensor([width, height])
        locations = reference_points[:, :, None, None, None, :] + offsets / normalizer  # [B, N, heads, 1, P, 2]
        sampled = multi_scale_deformable_attn(value, spatial_shapes, level_start_index_of(spatial_shapes),
                                              locations, weights, use_cuda_kernel=self.use_cuda_kernel)
        return query + self.dropout(self.output_proj(sampled))
