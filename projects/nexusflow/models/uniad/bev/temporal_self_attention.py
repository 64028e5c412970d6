"""Temporal self-attention (TSA) of BEVFormer: BEV queries attend to the previous BEV and to themselves.

Follows ``TemporalSelfAttention`` of OpenDriveLab/BEVFormer (two "queues", offsets and weights predicted from
``concat(previous BEV, query + pos)``, one BEV level, queues fused by their mean). What changed:

- the previous BEV is aligned to the current frame exactly, by the reference points of its queue (each current
  cell centre mapped into the previous LiDAR frame with ``inverse(prev2cur)``, see ``geometry.py``), instead of
  BEVFormer's image rotation of the previous BEV plus a grid shift;
- the previous-BEV feature fed to the offset/weight projections is the previous BEV bilinearly resampled at those
  aligned reference points (the previous queue's sampling offsets then act along the previous grid's axes, which
  differ from the current ones by the yaw change between the frames);
- batches may mix samples with and without history (per-sample ``has_history``); without history the previous
  queue holds the current queries, as BEVFormer does for a first frame;
- the current queue always holds the layer's input query (BEVFormer feeds the layer-0 queries to every layer when
  a previous BEV exists), so a frame with and one without history differ only in the previous queue.

The encoder's ``compat='uniad'`` fills the context BEVFormer's way instead (rotated previous BEV, shifted reference
points, ``current_value`` = the layer-0 queries); this module only reads the context.
"""
from typing import NamedTuple, Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import check_attention_heads, init_deformable_projections, xavier_linear_
from ...ops import level_start_index_of, multi_scale_deformable_attn


class TemporalContext(NamedTuple):
    """Inputs of TSA shared by all encoder layers of one forward pass.

    Attributes:
        reference_points: ``[B, 2, H*W, 2]`` unit BEV locations ``(x, y)`` of each query for the previous-BEV
            queue (index 0, aligned by ego motion) and the current queue (index 1, the cell centres).
        spatial_shapes: ``[1, 2]`` long ``(bev_h, bev_w)``.
        prev_bev: ``[B, H*W, C]`` previous BEV in its own frame, or ``None`` when no sample has history.
        prev_aligned: ``[B, H*W, C]`` ``prev_bev`` resampled at ``reference_points[:, 0]``, or ``None``.
        has_history: ``[B]`` bool, which samples use ``prev_bev``; ``None`` with ``prev_bev``.
        current_value: ``[B, H*W, C]`` value of the current queue for the samples with history, or ``None`` for
            the layer's input query (BEVFormer feeds its layer-0 queries, ``compat='uniad'``).
    """

    reference_points: Tensor
    spatial_shapes: Tensor
    prev_bev: Optional[Tensor] = None
    prev_aligned: Optional[Tensor] = None
    has_history: Optional[Tensor] = None
    current_value: Optional[Tensor] = None


def sample_bev(bev: Tensor, locations: Tensor, spatial_shapes: Tensor, use_cuda_kernel: bool = True) -> Tensor:
    """Bilinearly sample a BEV map (zeros outside) through the shared deformable-attention op.

    Args:
        bev (Tensor): ``[B, H*W, C]`` row-major BEV features.
        locations (Tensor): ``[B, Q, 2]`` unit BEV locations ``(x, y)``.
        spatial_shapes (Tensor): ``[1, 2]`` long ``(H, W)``.
        use_cuda_kernel (bool): use mmcv's kernel on CUDA tensors.

    Returns:
        Tensor: ``[B, Q, C]`` in the dtype of ``bev``.
    """
    batch, num_queries, _ = locations.shape
    value = bev[:, :, None, :]  # [B, H*W, 1 head, C]
    weights = locations.new_ones(batch, num_queries, 1, 1, 1)
    return multi_scale_deformable_attn(value, spatial_shapes, level_start_index_of(spatial_shapes),
                                       locations[:, :, None, None, None, :], weights,
                                       use_cuda_kernel=use_cuda_kernel)


@MODELS.register_module('UniADTemporalSelfAttention')
class TemporalSelfAttention(BaseModule):
    """BEVFormer's temporal self-attention over two BEV queues (previous BEV, current queries).

    Args:
        embed_dims (int): channels ``C`` of queries and BEV features.
        num_heads (int): attention heads; must divide ``embed_dims``.
        num_points (int): sampling points per head and queue.
        dropout (float): dropout on the attention output before the residual.
        im2col_step (int): batch chunk of the CUDA kernel.
        use_cuda_kernel (bool): use mmcv's kernel on CUDA tensors.
        init_cfg (dict, optional): mmengine init config.
    """

    num_queues = 2

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4, dropout: float = 0.1,
                 im2col_step: int = 64, use_cuda_kernel: bool = True, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_attention_heads(embed_dims, num_heads)
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_points = num_points
        self.im2col_step = im2col_step
        self.use_cuda_kernel = use_cuda_kernel
        in_dims = embed_dims * self.num_queues
        self.sampling_offsets = nn.Linear(in_dims, self.num_queues * num_heads * num_points * 2)
        self.attention_weights = nn.Linear(in_dims, self.num_queues * num_heads * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        init_deformable_projections(self.sampling_offsets, self.attention_weights, self.num_heads,
                                    self.num_queues, self.num_points)
        xavier_linear_(self.value_proj)
        xavier_linear_(self.output_proj)

    def forward(self, query: Tensor, query_pos: Tensor, context: TemporalContext) -> Tensor:
        """Attend from every BEV query to the aligned previous BEV and to the current queries.

        Args:
            query (Tensor): ``[B, H*W, C]`` BEV queries (row-major cells), also the residual.
            query_pos (Tensor): ``[B, H*W, C]`` positional encoding added to the query for the projections.
            context (TemporalContext): reference points, BEV shape and the previous BEV (see the class).

        Returns:
            Tensor: ``[B, H*W, C]`` ``query + dropout(output_proj(mean over the two queues))``.
        """
        batch, num_queries, channels = query.shape
        prev_value, prev_feature = self._previous_queue(query, context)
        proj_input = torch.cat((prev_feature, query + query_pos), -1)  # [B, HW, 2C]
        value = self.value_proj(torch.stack((prev_value, self._current_queue(query, context)), 1))  # [B, 2, HW, C]
        value = value.reshape(batch * self.num_queues, num_queries, self.num_heads, channels // self.num_heads)
        locations, weights = self._sampling(proj_input, context)
        output = multi_scale_deformable_attn(value, context.spatial_shapes,
                                             level_start_index_of(context.spatial_shapes), locations, weights,
                                             self.im2col_step, self.use_cuda_kernel)  # [B*2, HW, C]
        output = output.view(batch, self.num_queues, num_queries, channels).mean(1)
        return query + self.dropout(self.output_proj(output))

    @staticmethod
    def _previous_queue(query: Tensor, context: TemporalContext):
        """Value and projection input of the previous queue: the previous BEV where there is history."""
        if context.prev_bev is None:
            return query, query
        history = context.has_history[:, None, None]
        return (torch.where(history, context.prev_bev, query),
                torch.where(history, context.prev_aligned, query))

    @staticmethod
    def _current_queue(query: Tensor, context: TemporalContext) -> Tensor:
        """Value of the current queue: ``context.current_value`` where there is history, else the query."""
        if context.current_value is None:
            return query
        return torch.where(context.has_history[:, None, None], context.current_value, query)

    def _sampling(self, proj_input: Tensor, context: TemporalContext):
        """Sampling locations ``[B*2, HW, heads, 1, P, 2]`` and softmax weights ``[B*2, HW, heads, 1, P]``."""
        batch, num_queries, _ = proj_input.shape
        heads, queues, points = self.num_heads, self.num_queues, self.num_points
        offsets = self.sampling_offsets(proj_input).view(batch, num_queries, heads, queues, 1, points, 2)
        offsets = offsets.permute(0, 3, 1, 2, 4, 5, 6).reshape(batch * queues, num_queries, heads, 1, points, 2)
        weights = self.attention_weights(proj_input).view(batch, num_queries, heads, queues, points).softmax(-1)
        weights = weights.permute(0, 3, 1, 2, 4).reshape(batch * queues, num_queries, heads, 1, points)
        normaliser = context.spatial_shapes.flip(-1).to(offsets.dtype)  # [1, 2] (w, h): pixels -> unit
        reference = context.reference_points.reshape(batch * queues, num_queries, 1, 1, 1, 2)
        return reference + offsets / normaliser, weights
