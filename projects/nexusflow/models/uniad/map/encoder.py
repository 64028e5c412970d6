"""Deformable self-attention encoder of the map head over one BEV level.

Follows mmdet 2.x ``DetrTransformerEncoder`` with ``MultiScaleDeformableAttention`` layers as configured by UniAD's
``SegDeformableTransformer`` (operation order self_attn, norm, ffn, norm). Changed: ``num_levels=1`` (UniAD's
4-level setting on one BEV level is the known bug of issue #108; ``compat='uniad'`` reproduces it, see
``uniad_compat.py``), batch-first tensors, no level embedding (a constant for a single level; the converter folds
UniAD's ``level_embeds[0]`` into the attention biases).
"""
from typing import Optional, Tuple

import torch
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...ops import single_level_shapes
from .uniad_compat import map_deform_attn


def bev_reference_points(bev_h: int, bev_w: int, device: torch.device) -> Tensor:
    """Cell centres of a ``bev_h x bev_w`` grid as ``[1, bev_h * bev_w, 1, 2]`` points ``(x, y)`` in ``(0, 1)``.

    Row-major like the flattened BEV: index ``i * bev_w + j`` holds ``((j + 0.5) / bev_w, (i + 0.5) / bev_h)``.
    """
    ys = (torch.arange(bev_h, dtype=torch.float32, device=device) + 0.5) / bev_h
    xs = (torch.arange(bev_w, dtype=torch.float32, device=device) + 0.5) / bev_w
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], -1)[None, :, None, :]


class MapEncoderLayer(BaseModule):
    """Post-norm layer: deformable self-attention over the BEV, then an FFN.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Attention heads.
        num_points (int): Sampling points per head.
        ffn_dims (int): Hidden channels of the FFN.
        dropout (float): Dropout after the attention and inside the FFN.
        use_cuda_kernel (bool): See :class:`MSDeformAttn`.
        compat (str, optional): ``'uniad'``: UniAD's 4-level attention on the one level (``uniad_compat.py``).
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4, ffn_dims: int = 512,
                 dropout: float = 0.1, use_cuda_kernel: bool = True, compat: Optional[str] = None) -> None:
        super().__init__()
        self.self_attn = map_deform_attn(embed_dims, num_heads, num_points, use_cuda_kernel, compat)
        self.dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(embed_dims, ffn_dims, ffn_drop=dropout)
        self.norm2 = nn.LayerNorm(embed_dims)

    def forward(self, query: Tensor, query_pos: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor) -> Tensor:
        """``[B, HW, C]`` -> ``[B, HW, C]``; arguments as in :meth:`MapEncoder.forward` and
        :meth:`MSDeformAttn.forward` (``reference_points`` ``[B, HW, 1, 2]``)."""
        attended = self.self_attn(query + query_pos, query, reference_points, spatial_shapes, level_start_index)
        query = self.norm1(query + self.dropout(attended))
        return self.norm2(self.ffn(query))


@MODELS.register_module('UniADMapEncoder')
class MapEncoder(BaseModule):
    """Stack of :class:`MapEncoderLayer` over one BEV level; its output is the map head's BEV-shaped memory.

    Plug-ins tap ``map_head.transformer.encoder`` with a forward hook; the output is a plain tensor.

    Args:
        num_layers (int): Encoder layers (UniAD: 6).
        embed_dims, num_heads, num_points, ffn_dims, dropout, use_cuda_kernel, compat: see
            :class:`MapEncoderLayer`.
    """

    def __init__(self, num_layers: int = 6, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4,
                 ffn_dims: int = 512, dropout: float = 0.1, use_cuda_kernel: bool = True,
                 compat: Optional[str] = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        self.layers = nn.ModuleList([
            MapEncoderLayer(embed_dims, num_heads, num_points, ffn_dims, dropout, use_cuda_kernel, compat)
            for _ in range(num_layers)])

    def forward(self, bev: Tensor, bev_pos: Tensor, bev_hw: Tuple[int, int]) -> Tensor:
        """Encode the BEV features.

        Args:
            bev (Tensor): ``[B, bev_h * bev_w, C]`` float BEV features, batch-first, row-major (row ``i`` <-> LiDAR
                ``y``, column ``j`` <-> LiDAR ``x``; index ``i * bev_w + j``).
            bev_pos (Tensor): ``[B, bev_h * bev_w, C]`` positional embedding of the same cells.
            bev_hw (tuple[int, int]): ``(bev_h, bev_w)``.

        Returns:
            Tensor: ``[B, bev_h * bev_w, C]`` memory, same layout as ``bev``.
        """
        bev_h, bev_w = bev_hw
        if bev.dim() != 3 or bev.shape[1] != bev_h * bev_w or bev_pos.shape != bev.shape:
            raise ValueError(f'bev and bev_pos must both be [B, {bev_h * bev_w}, C] for a {bev_h}x{bev_w} grid, '
                             f'got {tuple(bev.shape)} and {tuple(bev_pos.shape)}')
        spatial_shapes, level_start_index = single_level_shapes(bev_h, bev_w, device=bev.device)
        reference_points = bev_reference_points(bev_h, bev_w, bev.device).expand(bev.shape[0], -1, -1, -1)
        memory = bev
        for layer in self.layers:
            memory = layer(memory, bev_pos, reference_points, spatial_shapes, level_start_index)
        return memory
