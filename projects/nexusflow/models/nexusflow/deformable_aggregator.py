"""``DeformableAggregator``: learned queries with learned reference points attend over a BEV / feature map.

The paper's aggregator ``g'`` is "a deformable transformer (Zhu et al. 2020)" with no further detail. This one
follows the single-level case of Deformable-DETR's ``MSDeformAttn`` (sampling offsets predicted from the query in
grid cells, a softmax over the sampled points of each head, the ring initialisation of the offsets), samples
through the plug-in's shared op (:func:`projects.nexusflow.models.ops.multi_scale_deformable_attn`: mmcv's CUDA
kernel on CUDA tensors, its PyTorch path otherwise), and changes: queries and reference points are learned
parameters (no input-dependent proposals), and the result is pooled and projected to one vector per sample.
"""
import math
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ..ops import level_start_index_of, multi_scale_deformable_attn
from .aggregators import LearnedQueryAggregator, dense_shape
from .tap_adapters import TapOutput


class SingleLevelDeformableAttention(BaseModule):
    """Deformable cross-attention of queries with reference points over one ``H x W`` feature level.

    Args:
        value_dims (int): channels of the sampled features.
        embed_dims (int): channels of the queries and of the output.
        num_heads (int): attention heads (must divide ``embed_dims``).
        num_points (int): sampling points per head.
    """

    def __init__(self, value_dims: int, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims must be divisible by num_heads, got {embed_dims} and {num_heads}')
        self.num_heads = num_heads
        self.num_points = num_points
        self.value_proj = nn.Linear(value_dims, embed_dims)
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_points)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Deformable-DETR init: offsets start on a ring (head ``h`` at angle ``2 pi h / H``, point ``p`` at
        ``p + 1`` cells), uniform attention over the points, Xavier projections."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        ring = torch.stack([angles.cos(), angles.sin()], dim=-1)
        ring = ring / ring.abs().max(dim=-1, keepdim=True).values
        steps = torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_((ring.unsqueeze(1) * steps).flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(self, query: Tensor, reference_points: Tensor, value: Tensor, spatial_shape: Tuple[int, int],
                padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attend.

        Args:
            query (Tensor): ``[B, Nq, E]``.
            reference_points (Tensor): ``[B, Nq, 2]`` ``(x, y)`` in ``[0, 1]``, top-left ``(0, 0)`` =
                column 0 / row 0 of the level, bottom-right ``(1, 1)``; samples outside read zeros.
            value (Tensor): ``[B, H*W, value_dims]`` row-major features of the level.
            spatial_shape (tuple[int, int]): ``(H, W)``.
            padding_mask (Tensor, optional): ``[B, H*W]`` bool, ``True`` cells read as zeros.

        Returns:
            Tensor: ``[B, Nq, E]``.
        """
        batch_size, num_query, _ = query.shape
        height, width = spatial_shape
        value = self.value_proj(value)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        # [B, HW, E] -> [B, HW, heads, E / heads]
        value = value.unflatten(-1, (self.num_heads, -1))
        # offsets in cells -> normalised: [B, Nq, heads, levels=1, points, 2]
        offsets = self.sampling_offsets(query).view(batch_size, num_query, self.num_heads, 1, self.num_points, 2)
        offsets = offsets / offsets.new_tensor([width, height])
        locations = reference_points[:, :, None, None, None, :] + offsets
        weights = self.attention_weights(query).view(batch_size, num_query, self.num_heads, self.num_points)
        weights = weights.softmax(dim=-1).unsqueeze(3)
        shapes = torch.tensor([[height, width]], dtype=torch.long, device=query.device)
        out = multi_scale_deformable_attn(value, shapes, level_start_index_of(shapes), locations, weights)
        return self.output_proj(out)


@MODELS.register_module()
class DeformableAggregator(LearnedQueryAggregator):
    """Learned queries + learned reference points, deformable attention over a dense tap, pooled to ``[B, D]``.

    Args:
        in_channels (int): ``C`` of the tap (``[B, H*W, C]`` BEV or ``[B, C, H, W]`` feature map).
        out_dim (int): embedding width ``D``.
        embed_dims (int, optional): width of the learned queries, default ``in_channels``.
        num_queries (int): learned queries; their reference points start on a regular grid over the map.
        num_heads (int): attention heads.
        num_points (int): sampling points per head.
        num_layers (int): number of (deformable attention, FFN) blocks.
        ffn_dims (int, optional): hidden width of the FFNs, default ``2 * embed_dims``.
        pool (str): ``'flatten'`` (keeps which region each query read) or ``'mean'``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, in_channels: int, out_dim: int = 256, embed_dims: Optional[int] = None,
                 num_queries: int = 16, num_heads: int = 8, num_points: int = 4, num_layers: int = 1,
                 ffn_dims: Optional[int] = None, pool: str = 'flatten', init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, out_dim, embed_dims, num_queries, num_layers, ffn_dims, pool,
                         init_cfg=init_cfg)
        self.attentions = nn.ModuleList(
            SingleLevelDeformableAttention(in_channels, self.embed_dims, num_heads, num_points)
            for _ in range(num_layers))

    def attend(self, layer: int, query: Tensor, reference_points: Tensor, tap: TapOutput) -> Tensor:
        """Deformable attention of block ``layer`` over the dense tap: ``[B, num_queries, E]``."""
        return self.attentions[layer](query, reference_points, tap.features, dense_shape(tap, type(self).__name__),
                                      tap.padding_mask)
