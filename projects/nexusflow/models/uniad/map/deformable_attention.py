"""Deformable attention (Deformable-DETR ``MSDeformAttn``) that samples through the plugin's shared op.

Follows ``fundamentalvision/Deformable-DETR: models/ops/modules/ms_deform_attn.py`` and mmcv's
``MultiScaleDeformableAttention``. Changed: batch-first tensors only, no residual/dropout inside (the calling layer
owns them), no padding mask (BEV grids have none), and the sampling always goes through
``projects.nexusflow.models.ops.multi_scale_deformable_attn`` so that CUDA and CPU share one code path.
Any module of the plugin that needs deformable attention over one or more feature levels can reuse it.
"""
import math

import torch
from mmengine.model import BaseModule, constant_init, xavier_init
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...ops import multi_scale_deformable_attn


@MODELS.register_module()
class MSDeformAttn(BaseModule):
    """Multi-scale deformable attention: each query reads ``num_points`` learned offsets per head and level.

    Args:
        embed_dims (int): Channels ``C`` of queries and values; must be divisible by ``num_heads``.
        num_heads (int): Attention heads.
        num_levels (int): Feature levels of the value (1 for a single BEV grid).
        num_points (int): Sampling points per head and level.
        im2col_step (int): Batch chunk of the CUDA kernel.
        use_cuda_kernel (bool): Use mmcv's CUDA kernel on CUDA tensors (the PyTorch path otherwise).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 1, num_points: int = 4,
                 im2col_step: int = 64, use_cuda_kernel: bool = True, init_cfg: dict = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims must be divisible by num_heads, got {embed_dims} and {num_heads}')
        for name, value in (('num_heads', num_heads), ('num_levels', num_levels), ('num_points', num_points)):
            if value < 1:
                raise ValueError(f'{name} must be >= 1, got {value}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.im2col_step = im2col_step
        self.use_cuda_kernel = use_cuda_kernel
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)

    def init_weights(self) -> None:
        """Deformable-DETR init: offsets start on a ring of head directions (point ``k`` at radius ``k + 1``
        cells), uniform attention weights, Xavier value/output projections."""
        constant_init(self.sampling_offsets, 0.)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True)[0]
        grid = grid.view(self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        constant_init(self.attention_weights, val=0., bias=0.)
        xavier_init(self.value_proj, distribution='uniform', bias=0.)
        xavier_init(self.output_proj, distribution='uniform', bias=0.)

    def forward(self, query: Tensor, value: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor) -> Tensor:
        """Attend from every query to ``num_points`` deformed locations around its reference point(s).

        Args:
            query (Tensor): ``[B, Nq, C]`` float, query features (positional embedding already added); they
                predict the sampling offsets and attention weights.
            value (Tensor): ``[B, Nv, C]`` float, the levels flattened row-major one after another
                (``Nv = sum(h_l * w_l)``).
            reference_points (Tensor): ``[B, Nq, num_levels, 2]`` points ``(x, y)`` or ``[B, Nq, num_levels, 4]``
                boxes ``(cx, cy, w, h)``, normalised to ``[0, 1]`` per level, top-left ``(0, 0)``, bottom-right
                ``(1, 1)``; ``x`` runs along the columns. With points, an offset of 1 moves one cell; with boxes,
                offsets are scaled by ``0.5 * (w, h) / num_points``.
            spatial_shapes (LongTensor): ``[num_levels, 2]``, ``(h_l, w_l)`` of each level.
            level_start_index (LongTensor): ``[num_levels]``, offset of each level in ``Nv``.

        Returns:
            Tensor: ``[B, Nq, C]`` attended features (after ``output_proj``), dtype of ``value``.
        """
        bs, num_query, _ = query.shape
        self._check_inputs(query, value, reference_points, spatial_shapes)
        head_dims = self.embed_dims // self.num_heads
        value = self.value_proj(value).view(bs, value.shape[1], self.num_heads, head_dims)
        offsets = self.sampling_offsets(query).view(bs, num_query, self.num_heads, self.num_levels,
                                                    self.num_points, 2)
        weights = self.attention_weights(query).view(bs, num_query, self.num_heads,
                                                     self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(bs, num_query, self.num_heads, self.num_levels, self.num_points)
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

    def _check_inputs(self, query: Tensor, value: Tensor, reference_points: Tensor, spatial_shapes: Tensor) -> None:
        """Raise ``ValueError`` with expected-vs-got shapes for inputs that do not fit this module."""
        if query.dim() != 3 or query.shape[-1] != self.embed_dims:
            raise ValueError(f'query must be [B, Nq, {self.embed_dims}], got {tuple(query.shape)}')
        if value.dim() != 3 or value.shape[0] != query.shape[0] or value.shape[-1] != self.embed_dims:
            raise ValueError(f'value must be [{query.shape[0]}, Nv, {self.embed_dims}], got {tuple(value.shape)}')
        expected = (query.shape[0], query.shape[1], self.num_levels)
        if tuple(reference_points.shape[:3]) != expected or reference_points.shape[-1] not in (2, 4):
            raise ValueError(f'reference_points must be [{", ".join(map(str, expected))}, 2 or 4], '
                             f'got {tuple(reference_points.shape)}')
        if spatial_shapes.shape != (self.num_levels, 2):
            raise ValueError(f'spatial_shapes must be [{self.num_levels}, 2], got {tuple(spatial_shapes.shape)}')
