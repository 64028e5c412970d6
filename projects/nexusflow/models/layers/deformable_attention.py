"""``MSDeformAttn``: the plugin's one deformable-attention module (queries sample learned offsets around a reference).

Follows ``fundamentalvision/Deformable-DETR: models/ops/modules/ms_deform_attn.py`` and mmcv's
``MultiScaleDeformableAttention``. Changed: batch-first tensors only; no residual, dropout or positional embedding
inside (the calling layer owns them, as in Deformable-DETR); the value may be narrower or wider than the queries
(``value_dims``) and may carry a padding mask; the sampling always goes through
:func:`projects.nexusflow.models.ops.multi_scale_deformable_attn` (mmcv's CUDA kernel on CUDA tensors, the PyTorch
path otherwise), so CUDA and CPU share one code path.

Users: the map head's encoder (self-attention over the BEV) and decoder (thing queries over the encoder memory),
the track decoder (track queries over the BEV) and NexusFlow's ``DeformableAggregator`` (learned queries over a
dense tap). BEVFormer's pillar attention and TSA (``models/uniad/bev/``) differ in their reference layout and share
the initialisation helpers of ``attention_utils.py`` instead.

The Deformable-DETR initialisation lives in :meth:`MSDeformAttn.init_weights` (mmengine idiom: the runner calls it
through the model's ``init_weights``); the constructor leaves PyTorch's default ``Linear`` init, so a caller that
needs the module ready at construction calls ``init_weights()`` itself.
"""
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ..ops import multi_scale_deformable_attn
from .attention_utils import check_attention_heads, init_deformable_projections
from .weight_init import xavier_linear_


@MODELS.register_module('NexusFlowMSDeformAttn')
class MSDeformAttn(BaseModule):
    """Multi-scale deformable attention: each query reads ``num_points`` learned offsets per head and level.

    Args:
        embed_dims (int): Channels ``C`` of the queries and of the output; must be divisible by ``num_heads``.
        num_heads (int): Attention heads.
        num_levels (int): Feature levels of the value (1 for a single BEV grid or feature map).
        num_points (int): Sampling points per head and level.
        value_dims (int, optional): Channels of the value before ``value_proj`` (default ``embed_dims``).
        im2col_step (int): Batch chunk of the CUDA kernel.
        use_cuda_kernel (bool): Use mmcv's CUDA kernel on CUDA tensors (the PyTorch path otherwise).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 1, num_points: int = 4,
                 value_dims: Optional[int] = None, im2col_step: int = 64, use_cuda_kernel: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_attention_heads(embed_dims, num_heads)
        value_dims = embed_dims if value_dims is None else value_dims
        for name, value in (('num_levels', num_levels), ('num_points', num_points), ('value_dims', value_dims)):
            if value < 1:
                raise ValueError(f'{name} must be >= 1, got {value}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.value_dims = value_dims
        self.im2col_step = im2col_step
        self.use_cuda_kernel = use_cuda_kernel
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(value_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)

    def init_weights(self) -> None:
        """Deformable-DETR init: offsets start on a ring of head directions (point ``k`` at radius ``k + 1``
        cells), uniform attention weights, Xavier value/output projections."""
        init_deformable_projections(self.sampling_offsets, self.attention_weights, self.num_heads,
                                    self.num_levels, self.num_points)
        xavier_linear_(self.value_proj)
        xavier_linear_(self.output_proj)

    def forward(self, query: Tensor, value: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor, value_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attend from every query to ``num_points`` deformed locations around its reference point(s).

        Args:
            query (Tensor): ``[B, Nq, C]`` float, query features (positional embedding already added); they
                predict the sampling offsets and attention weights.
            value (Tensor): ``[B, Nv, value_dims]`` float, the levels flattened row-major one after another
                (``Nv = sum(h_l * w_l)``).
            reference_points (Tensor): ``[B, Nq, num_levels, 2]`` points ``(x, y)`` or ``[B, Nq, num_levels, 4]``
                boxes ``(cx, cy, w, h)``, normalised to ``[0, 1]`` per level, top-left ``(0, 0)``, bottom-right
                ``(1, 1)``; ``x`` runs along the columns (for the BEV: LiDAR x), ``y`` along the rows (LiDAR y), and
                cell ``(i, j)`` has its centre at ``((j + 0.5) / w_l, (i + 0.5) / h_l)``. With points, an offset of
                1 moves one cell; with boxes, offsets are scaled by ``0.5 * (w, h) / num_points``. Locations
                outside ``[0, 1]`` read zeros.
            spatial_shapes (LongTensor): ``[num_levels, 2]``, ``(h_l, w_l)`` of each level.
            level_start_index (LongTensor): ``[num_levels]``, offset of each level in ``Nv``
                (``cat([0], cumsum(h * w)[:-1])``).
            value_padding_mask (BoolTensor, optional): ``[B, Nv]``, ``True`` where the value is padding (read as
                zeros).

        Returns:
            Tensor: ``[B, Nq, C]`` attended features (after ``output_proj``), dtype of ``value``.
        """
        batch, num_query, _ = query.shape
        self._check_inputs(query, value, reference_points, spatial_shapes, value_padding_mask)
        value = self.value_proj(value)
        if value_padding_mask is not None:
            value = value.masked_fill(value_padding_mask[..., None], 0.0)
        value = value.view(batch, value.shape[1], self.num_heads, self.embed_dims // self.num_heads)
        offsets = self.sampling_offsets(query).view(batch, num_query, self.num_heads, self.num_levels,
                                                    self.num_points, 2)
        weights = self.attention_weights(query).view(batch, num_query, self.num_heads,
                                                     self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(batch, num_query, self.num_heads, self.num_levels, self.num_points)
        locations = self._sampling_locations(reference_points, offsets, spatial_shapes)
        output = multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations, weights,
                                             im2col_step=self.im2col_step, use_cuda_kernel=self.use_cuda_kernel)
        return self.output_proj(output)

    def _sampling_locations(self, reference_points: Tensor, offsets: Tensor, spatial_shapes: Tensor) -> Tensor:
        """``[B, Nq, heads, levels, points, 2]`` sampling locations in ``[0, 1]`` from references and offsets."""
        if reference_points.shape[-1] == 2:
            normalizer = torch.stack([spatial_shapes[:, 1], spatial_shapes[:, 0]], -1).to(offsets)  # (w, h)
            return reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        centres = reference_points[:, :, None, :, None, :2]
        sizes = reference_points[:, :, None, :, None, 2:]
        return centres + offsets / self.num_points * sizes * 0.5

    def _check_inputs(self, query: Tensor, value: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                      value_padding_mask: Optional[Tensor]) -> None:
        """Raise ``ValueError`` with expected-vs-got shapes for inputs that do not fit this module."""
        if query.dim() != 3 or query.shape[-1] != self.embed_dims:
            raise ValueError(f'query must be [B, Nq, {self.embed_dims}], got {tuple(query.shape)}')
        if value.dim() != 3 or value.shape[0] != query.shape[0] or value.shape[-1] != self.value_dims:
            raise ValueError(f'value must be [{query.shape[0]}, Nv, {self.value_dims}], got {tuple(value.shape)}')
        expected = (query.shape[0], query.shape[1], self.num_levels)
        if (reference_points.dim() != 4 or tuple(reference_points.shape[:3]) != expected
                or reference_points.shape[-1] not in (2, 4)):
            raise ValueError(f'reference_points must be [{", ".join(map(str, expected))}, 2 or 4], '
                             f'got {tuple(reference_points.shape)}')
        if spatial_shapes.shape != (self.num_levels, 2):
            raise ValueError(f'spatial_shapes must be [{self.num_levels}, 2], got {tuple(spatial_shapes.shape)}')
        if value_padding_mask is not None and value_padding_mask.shape != value.shape[:2]:
            raise ValueError(f'value_padding_mask must be [{value.shape[0]}, {value.shape[1]}] like the value, '
                             f'got {tuple(value_padding_mask.shape)}')


# The track decoder's attention was registered as 'UniADBEVDeformableAttention' (same parameters, residual and
# dropout now in ``TrackDecoderLayer``); the name stays buildable from configs.
MODELS.register_module('UniADBEVDeformableAttention', module=MSDeformAttn)
