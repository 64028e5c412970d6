"""Helpers shared by the plugin's attention modules: the head-count check and Deformable-DETR's offset init.

Used by :class:`~projects.nexusflow.models.layers.MSDeformAttn`, BEVFormer's ``TemporalSelfAttention`` and
``MSDeformableAttention3D`` (``models/uniad/bev/``), the map head's mask attention and NexusFlow's Gaussian-prior
attention, so that every one of them checks its arguments and starts its sampling offsets the same way.
"""
import math

import torch
from torch import Tensor, nn


def check_attention_heads(embed_dims: int, num_heads: int) -> None:
    """Raise ``ValueError`` unless ``num_heads >= 1`` divides ``embed_dims`` (each head gets ``C / heads`` channels)."""
    if num_heads < 1 or embed_dims % num_heads != 0:
        raise ValueError(f'embed_dims must be divisible by num_heads, got {embed_dims} and {num_heads}')


def ring_offset_bias(num_heads: int, num_groups: int, num_points: int) -> Tensor:
    """Bias of a sampling-offset ``Linear`` whose output is laid out ``[heads, groups, points, 2]``.

    Head ``h`` points in direction ``2 * pi * h / num_heads`` (scaled so that the larger component is 1) and its
    ``k``-th point sits ``k + 1`` feature pixels away: the heads start as a ring of directions, the points as
    rays (Deformable-DETR's ``_reset_parameters``). ``groups`` are the feature levels (times the BEV queues for
    TSA); all groups start alike.

    Args:
        num_heads (int): attention heads, ``>= 1``.
        num_groups (int): levels (or levels x queues), ``>= 1``.
        num_points (int): sampling points per head and group, ``>= 1``.

    Returns:
        Tensor: ``[num_heads * num_groups * num_points * 2]`` float32 offsets ``(x, y)`` in feature pixels.
    """
    thetas = torch.arange(num_heads, dtype=torch.float32) * (2.0 * math.pi / num_heads)
    grid = torch.stack((thetas.cos(), thetas.sin()), -1)  # [heads, 2]
    grid = grid / grid.abs().max(-1, keepdim=True)[0]
    grid = grid[:, None, None, :].repeat(1, num_groups, num_points, 1)  # [heads, groups, points, 2]
    grid = grid * torch.arange(1, num_points + 1, dtype=torch.float32)[None, None, :, None]
    return grid.reshape(-1)


def init_deformable_projections(sampling_offsets: nn.Linear, attention_weights: nn.Linear, num_heads: int,
                                num_groups: int, num_points: int) -> None:
    """Zero offset weights with the :func:`ring_offset_bias`, and zero attention logits (uniform after softmax)."""
    nn.init.zeros_(sampling_offsets.weight)
    with torch.no_grad():
        sampling_offsets.bias.copy_(ring_offset_bias(num_heads, num_groups, num_points))
    nn.init.zeros_(attention_weights.weight)
    nn.init.zeros_(attention_weights.bias)
