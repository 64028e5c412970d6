"""Deformable-DETR's initialisation of the sampling offsets, shared by the BEV attentions."""
import math

import torch
from torch import Tensor, nn


def ring_offset_bias(num_heads: int, num_groups: int, num_points: int) -> Tensor:
    """Bias of a sampling-offset ``Linear`` whose output is laid out ``[heads, groups, points, 2]``.

    Head ``h`` points in direction ``2 * pi * h / num_heads`` (scaled so that the larger component is 1) and its
    ``k``-th point sits ``k + 1`` feature pixels away: the heads start as a ring of directions, the points as
    rays. ``groups`` are the levels (times the BEV queues for TSA); all groups start alike.

    Returns:
        Tensor: ``[num_heads * num_groups * num_points * 2]`` float32, in feature pixels ``(x, y)``.
    """
    thetas = torch.arange(num_heads, dtype=torch.float32) * (2.0 * math.pi / num_heads)
    grid = torch.stack((thetas.cos(), thetas.sin()), -1)  # [heads, 2]
    grid = grid / grid.abs().max(-1, keepdim=True)[0]
    grid = grid[:, None, None, :].repeat(1, num_groups, num_points, 1)  # [heads, groups, points, 2]
    grid = grid * torch.arange(1, num_points + 1, dtype=torch.float32)[None, None, :, None]
    return grid.reshape(-1)


def init_deformable_projections(sampling_offsets: nn.Linear, attention_weights: nn.Linear, num_heads: int,
                                num_groups: int, num_points: int) -> None:
    """Zero offset weights with a ring bias, and zero attention logits (uniform weights after the softmax)."""
    nn.init.zeros_(sampling_offsets.weight)
    with torch.no_grad():
        sampling_offsets.bias.copy_(ring_offset_bias(num_heads, num_groups, num_points))
    nn.init.zeros_(attention_weights.weight)
    nn.init.zeros_(attention_weights.bias)


def xavier_linear_(layer: nn.Linear) -> None:
    """Xavier-uniform weight and zero bias (mmcv ``xavier_init(distribution='uniform', bias=0)``)."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
