"""The map-transformer attention the official UniAD weights were trained with (``compat='uniad'``, issue #108).

UniAD's ``SegDeformableTransformer`` builds mmcv's ``MultiScaleDeformableAttention`` with ``num_levels=4`` in the
encoder and the decoder but feeds it one level (the BEV): ``spatial_shapes`` ``[[bev_h, bev_w]]``,
``level_start_index`` ``[0]``, reference points ``[B, Nq, 1, 2 or 4]``, only ``level_embeds[0]`` added to the
positional encoding. mmcv then computes:

- ``sampling_offsets(query)`` as ``[B, Nq, heads, 4, points, 2]`` and ``attention_weights(query)`` with the softmax
  over all ``4 * points`` entries of a head, viewed ``[B, Nq, heads, 4, points]``;
- sampling locations ``reference + offset / (w, h)`` of the one level for all 4 levels (the reference and the
  normaliser broadcast over the level axis);
- the CUDA kernel (``ms_deform_attn_forward``) takes the level count from ``spatial_shapes`` (1) and the point
  count from ``sampling_locations.size(4)``, and walks both contiguous tensors as if they were
  ``[B, Nq, heads, 1, points, (2)]``: the query ``(b, q)``, head ``m``, point ``p`` reads flat entry
  ``((b * Nq + q) * heads + m) * points + p`` of the 4-level tensors. Only their first quarter is read, and query
  ``q`` uses the locations and weights computed for query ``q // 4`` (head ``2 (q % 4) + m // 4``, level
  ``m % 4`` for 8 heads and 4 points); its weights need not sum to 1. (mmcv's PyTorch fallback fails on these
  shapes, so the official model only ran on CUDA.)

:class:`UniADMapDeformAttn` reproduces exactly that read (:func:`kernel_read`) and then samples the one level
through the plugin's op, so the CPU path and the CUDA kernel give the official result. Its parameters have the
official 4-level shapes, so a converted official checkpoint loads unchanged.

The same switch makes the mask decoders give UniAD's non-negative (ReLU) masks, used as probabilities without a
sigmoid (``mask_head.py``); :func:`probability_mask_losses` adapts the dice loss and the dice matching cost to them.
"""
from typing import Optional, Tuple

from torch import Tensor

from ...layers import MSDeformAttn
from ...ops import multi_scale_deformable_attn
from ..bev.uniad_compat import COMPAT_MODES

__all__ = ['COMPAT_MODES', 'UNIAD_MAP_LEVELS', 'kernel_read', 'UniADMapDeformAttn', 'map_deform_attn',
           'probability_mask_losses']

#: ``num_levels`` of UniAD's map-transformer attentions (``_num_levels_`` of ``base_track_map.py``)
UNIAD_MAP_LEVELS = 4


def kernel_read(locations: Tensor, weights: Tensor) -> Tuple[Tensor, Tensor]:
    """What mmcv's kernel reads of ``L``-level locations / weights when ``spatial_shapes`` has one level.

    Args:
        locations (Tensor): ``[B, Nq, heads, L, points, 2]`` sampling locations.
        weights (Tensor): ``[B, Nq, heads, L, points]`` attention weights.

    Returns:
        tuple[Tensor, Tensor]: ``[B, Nq, heads, 1, points, 2]`` and ``[B, Nq, heads, 1, points]``: the first
        ``B * Nq * heads * points`` entries (pairs for the locations) of the row-major flattened inputs.
    """
    batch, num_query, num_heads, _, num_points = weights.shape
    count = batch * num_query * num_heads * num_points
    return (locations.reshape(-1)[:2 * count].view(batch, num_query, num_heads, 1, num_points, 2),
            weights.reshape(-1)[:count].view(batch, num_query, num_heads, 1, num_points))


class UniADMapDeformAttn(MSDeformAttn):
    """:class:`MSDeformAttn` with ``projection_levels`` levels of projections over a one-level value, read as mmcv's
    CUDA kernel reads them (module docstring).

    Args:
        embed_dims, num_heads, num_points, use_cuda_kernel: see :class:`MSDeformAttn`.
        projection_levels (int): levels of ``sampling_offsets`` / ``attention_weights`` (UniAD: 4).
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4,
                 projection_levels: int = UNIAD_MAP_LEVELS, use_cuda_kernel: bool = True) -> None:
        super().__init__(embed_dims, num_heads, num_levels=projection_levels, num_points=num_points,
                         use_cuda_kernel=use_cuda_kernel)

    def forward(self, query: Tensor, value: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor, value_padding_mask: Optional[Tensor] = None) -> Tensor:
        """As :meth:`MSDeformAttn.forward` for one value level: ``reference_points`` ``[B, Nq, 1, 2 or 4]``,
        ``spatial_shapes`` ``[1, 2]``; returns ``[B, Nq, C]``."""
        batch, num_query, _ = query.shape
        if spatial_shapes.shape != (1, 2) or reference_points.dim() != 4 or reference_points.shape[2] != 1:
            raise ValueError('UniADMapDeformAttn reads one value level: spatial_shapes must be [1, 2] and '
                             f'reference_points [B, Nq, 1, 2 or 4], got {tuple(spatial_shapes.shape)} and '
                             f'{tuple(reference_points.shape)}')
        if value_padding_mask is not None:
            raise ValueError('UniADMapDeformAttn takes no value_padding_mask (the BEV has no padding)')
        value = self.value_proj(value).view(batch, value.shape[1], self.num_heads, self.embed_dims // self.num_heads)
        offsets = self.sampling_offsets(query).view(batch, num_query, self.num_heads, self.num_levels,
                                                    self.num_points, 2)
        weights = self.attention_weights(query).view(batch, num_query, self.num_heads,
                                                     self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(batch, num_query, self.num_heads, self.num_levels, self.num_points)
        locations, weights = kernel_read(self._sampling_locations(reference_points, offsets, spatial_shapes),
                                         weights)
        output = multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations, weights,
                                             im2col_step=self.im2col_step, use_cuda_kernel=self.use_cuda_kernel)
        return self.output_proj(output)


def map_deform_attn(embed_dims: int, num_heads: int, num_points: int, use_cuda_kernel: bool,
                    compat: Optional[str] = None) -> MSDeformAttn:
    """The map transformer's deformable attention over the one BEV level: :class:`MSDeformAttn` with one level, or
    :class:`UniADMapDeformAttn` under ``compat='uniad'``."""
    if compat not in COMPAT_MODES:
        raise ValueError(f'map transformer: compat must be one of {COMPAT_MODES}, got {compat!r}')
    if compat == 'uniad':
        return UniADMapDeformAttn(embed_dims, num_heads, num_points, use_cuda_kernel=use_cuda_kernel)
    return MSDeformAttn(embed_dims, num_heads, num_levels=1, num_points=num_points, use_cuda_kernel=use_cuda_kernel)


def probability_mask_losses(loss_mask: dict, mask_assigner: dict) -> Tuple[dict, dict]:
    """The mask loss and mask matcher configs for masks that already are probabilities (UniAD's ReLU masks).

    UniAD's ``DiceLoss`` reads the masks as they are, ``1 - 2 sum(x t) / (sum(x^2) + sum(t^2))``: mmdet's
    ``DiceLoss`` with ``naive_dice=False`` and ``activate=False``. The matcher's ``DiceCost`` gets ``pred_act=False``.

    Args:
        loss_mask (dict): an mmdet ``DiceLoss`` config.
        mask_assigner (dict): an assigner config with ``match_costs``.

    Returns:
        tuple[dict, dict]: copies with ``activate=False`` and ``pred_act=False`` on every ``DiceCost``.
    """
    if not str(loss_mask.get('type', '')).endswith('DiceLoss'):
        raise ValueError(f"compat='uniad' map masks need a DiceLoss as loss_mask (UniAD's), got {loss_mask}")
    costs = [dict(cost, pred_act=False) if str(cost.get('type', '')).endswith('DiceCost') else cost
             for cost in mask_assigner.get('match_costs', [])]
    return dict(loss_mask, activate=False), dict(mask_assigner, match_costs=costs)
