"""Deformable-attention projections of another level count, and constant inputs folded into biases.

mmcv's ``MultiScaleDeformableAttention`` (and this project's ``MSDeformAttn``) read ``sampling_offsets(query)`` as
``[..., num_heads, num_levels, num_points, 2]`` and ``attention_weights(query)`` as
``[..., num_heads, num_levels * num_points]`` (softmax over the last axis), i.e. output row
``((h * num_levels + l) * num_points + p) * k + c`` for ``k`` values per point (2 offsets, 1 weight).
"""
from typing import Tuple

from torch import Tensor


def keep_level(weight: Tensor, bias: Tensor, num_heads: int, num_levels: int, values_per_point: int,
               level: int = 0) -> Tuple[Tensor, Tensor]:
    """Rows of one level of a deformable-attention projection.

    Args:
        weight (Tensor): ``[num_heads * num_levels * P * k, C]``.
        bias (Tensor): ``[num_heads * num_levels * P * k]``.
        num_heads (int): attention heads.
        num_levels (int): levels of the source layer.
        values_per_point (int): ``k``: 2 for ``sampling_offsets``, 1 for ``attention_weights``.
        level (int): the level to keep.

    Returns:
        tuple[Tensor, Tensor]: weight ``[num_heads * P * k, C]`` and bias ``[num_heads * P * k]``. For
        ``attention_weights`` the softmax then runs over the kept level's ``P`` points only, so the relative
        weights of those points are kept and their sum becomes 1.
    """
    rows = weight.shape[0]
    block = num_heads * num_levels * values_per_point
    if rows % block or bias.shape != (rows, ) or not 0 <= level < num_levels:
        raise ValueError(f'cannot split {rows} rows into {num_heads} heads x {num_levels} levels x points x '
                         f'{values_per_point} (level {level})')
    points = rows // block
    shape = (num_heads, num_levels, points * values_per_point)
    return (weight.reshape(*shape, -1)[:, level].reshape(-1, weight.shape[1]),
            bias.reshape(shape)[:, level].reshape(-1))


def fold_into_bias(weight: Tensor, bias: Tensor, constant: Tensor) -> Tensor:
    """Bias of ``Linear(x + constant)`` written as ``Linear'(x)``: ``bias + weight @ constant``."""
    return bias + weight @ constant.to(weight.dtype)
