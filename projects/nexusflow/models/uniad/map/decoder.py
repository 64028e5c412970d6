"""Thing-query decoder of the map head with iterative box refinement (Deformable-DETR ``with_box_refine``).

Follows mmdet 2.x ``DeformableDetrTransformerDecoder`` + ``DetrTransformerDecoderLayer`` as configured by UniAD's
``PansegformerHead`` (self-attention, deformable cross-attention to the BEV memory, FFN; post-norm).
Changed: ``num_levels=1`` (issue #108; ``compat='uniad'`` reproduces UniAD's 4 levels, see ``uniad_compat.py``),
batch-first tensors, and the per-layer regression branches live here and the decoder returns the refined boxes of
every layer. In UniAD the head recomputes exactly these boxes from the same branches and references; keeping them in
one place removes that duplication.
"""
from typing import Optional, Tuple

import torch
from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers.transformer import inverse_sigmoid
from mmengine.model import BaseModule, constant_init
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import build_mlp
from ...ops import single_level_shapes
from .uniad_compat import map_deform_attn


class MapDecoderLayer(BaseModule):
    """Post-norm decoder layer: query self-attention, deformable cross-attention to the memory, FFN.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Heads of both attentions.
        num_points (int): Sampling points per head of the cross-attention.
        ffn_dims (int): Hidden channels of the FFN.
        dropout (float): Dropout of the attentions and the FFN.
        use_cuda_kernel (bool): See :class:`MSDeformAttn`.
        compat (str, optional): ``'uniad'``: UniAD's 4-level attention on the one level (``uniad_compat.py``).
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4, ffn_dims: int = 512,
                 dropout: float = 0.1, use_cuda_kernel: bool = True, compat: Optional[str] = None) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = map_deform_attn(embed_dims, num_heads, num_points, use_cuda_kernel, compat)
        self.dropout = nn.Dropout(dropout)
        self.ffn = FFN(embed_dims, ffn_dims, ffn_drop=dropout)
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dims) for _ in range(3)])

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor, reference_points: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor) -> Tensor:
        """``[B, Nq, C]`` -> ``[B, Nq, C]``; ``reference_points`` ``[B, Nq, 1, 2 or 4]`` as in
        :meth:`MSDeformAttn.forward`, ``memory`` ``[B, HW, C]``."""
        q = k = query + query_pos
        attended = self.self_attn(q, k, query, need_weights=False)[0]
        query = self.norms[0](query + self.dropout(attended))
        attended = self.cross_attn(query + query_pos, memory, reference_points, spatial_shapes, level_start_index)
        query = self.norms[1](query + self.dropout(attended))
        return self.norms[2](self.ffn(query))


def refine_boxes(deltas: Tensor, reference: Tensor) -> Tensor:
    """Boxes ``sigmoid(deltas + inverse_sigmoid(reference))``; a 2-D reference only shifts the centre.

    Args:
        deltas (Tensor): ``[..., 4]`` regression output (logit space, ``cx, cy, w, h``).
        reference (Tensor): ``[..., 2]`` centres or ``[..., 4]`` boxes, normalised to ``[0, 1]``.

    Returns:
        Tensor: ``[..., 4]`` boxes ``(cx, cy, w, h)`` in ``(0, 1)``.
    """
    if reference.shape[-1] == 4:
        return (deltas + inverse_sigmoid(reference)).sigmoid()
    centres = deltas[..., :2] + inverse_sigmoid(reference)
    return torch.cat([centres, deltas[..., 2:]], -1).sigmoid()


@MODELS.register_module('UniADMapDecoder')
class MapDecoder(BaseModule):
    """Stack of :class:`MapDecoderLayer` with one regression branch per layer (iterative box refinement).

    Layer ``l`` reads the reference boxes refined by layer ``l - 1`` (detached, as in Deformable-DETR); the first
    layer reads 2-D reference points.

    Args:
        num_layers (int): Decoder layers (UniAD: 6).
        embed_dims, num_heads, num_points, ffn_dims, dropout, use_cuda_kernel, compat: see
            :class:`MapDecoderLayer`.
        num_reg_fcs (int): Hidden ``Linear-ReLU`` blocks of each regression branch before the output layer.
    """

    def __init__(self, num_layers: int = 6, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4,
                 ffn_dims: int = 512, dropout: float = 0.1, num_reg_fcs: int = 2,
                 use_cuda_kernel: bool = True, compat: Optional[str] = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        self.layers = nn.ModuleList([
            MapDecoderLayer(embed_dims, num_heads, num_points, ffn_dims, dropout, use_cuda_kernel, compat)
            for _ in range(num_layers)])
        self.reg_branches = nn.ModuleList([build_mlp(embed_dims, [embed_dims] * num_reg_fcs, 4, dict(type='ReLU'))
                                           for _ in range(num_layers)])

    def init_regression(self) -> None:
        """UniAD's head init: zero output layers; the first layer starts from small boxes (``w, h`` logit -2)."""
        for branch in self.reg_branches:
            constant_init(branch[-1], 0., bias=0.)
        nn.init.constant_(self.reg_branches[0][-1].bias.data[2:], -2.0)

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor, reference_points: Tensor,
                bev_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Decode the thing queries.

        Args:
            query (Tensor): ``[B, Nq, C]`` query content.
            query_pos (Tensor): ``[B, Nq, C]`` query positional embedding.
            memory (Tensor): ``[B, bev_h * bev_w, C]`` encoder memory, row-major BEV.
            reference_points (Tensor): ``[B, Nq, 2]`` initial centres ``(x, y)`` in ``(0, 1)`` of the canvas
                (``x`` along the columns, ``y`` along the rows).
            bev_hw (tuple[int, int]): ``(bev_h, bev_w)``.

        Returns:
            tuple[Tensor, Tensor]: ``states`` ``[L, B, Nq, C]`` (output of every layer) and ``boxes``
            ``[L, B, Nq, 4]`` refined boxes ``(cx, cy, w, h)`` in ``(0, 1)`` of the canvas (with gradient).
        """
        spatial_shapes, level_start_index = single_level_shapes(*bev_hw, device=memory.device)
        reference = reference_points
        states, boxes = [], []
        for layer, reg_branch in zip(self.layers, self.reg_branches):
            query = layer(query, query_pos, memory, reference[:, :, None], spatial_shapes, level_start_index)
            layer_boxes = refine_boxes(reg_branch(query), reference)
            reference = layer_boxes.detach()
            states.append(query)
            boxes.append(layer_boxes)
        return torch.stack(states), torch.stack(boxes)
