"""The TrackFormer decoder: DETR-style layers over the BEV with iterative reference refinement.

Follows UniAD's ``DetectionTransformerDecoder`` + ``DetrTransformerDecoderLayer`` (operation order self_attn, norm,
cross_attn, norm, ffn, norm; post-norm) with UniAD's ``CustomMSDeformableAttention`` as the cross-attention (the
plugin's :class:`~projects.nexusflow.models.layers.MSDeformAttn` with one level: offsets and weights predicted from
``query + query_pos``, residual and dropout in the layer). Changed: batch first; the self-attention masks padded
queries so that ``B`` samples with different numbers of tracks share one batch; the regression branches are passed
to ``forward`` explicitly (mmdet 3.x idiom) instead of being injected into the decoder.

Plug-ins tap ``track_head.decoder`` with a forward hook; its return value ``(states, references)`` is part of the
plugin's contract (``projects/nexusflow/README.md``).
"""
from typing import Optional, Tuple

import torch
from mmdet.models.layers.transformer import inverse_sigmoid
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import MSDeformAttn
from ...ops import single_level_shapes
from .box_coder import TrackBoxCoder


@MODELS.register_module('UniADTrackDecoderLayer')
class TrackDecoderLayer(BaseModule):
    """Self-attention among queries, deformable cross-attention into the BEV, FFN; each followed by LayerNorm.

    Args:
        embed_dims (int): channels ``C``.
        num_heads (int): heads of both attentions.
        num_points (int): deformable sampling points per head.
        ffn_dims (int): hidden width of the FFN.
        dropout (float): dropout of attention outputs and FFN.
        use_cuda_kernel (bool): see :class:`MSDeformAttn`.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4, ffn_dims: int = 512,
                 dropout: float = 0.1, use_cuda_kernel: bool = True, init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.self_attn_dropout = nn.Dropout(dropout)
        self.cross_attn = MSDeformAttn(embed_dims, num_heads, num_levels=1, num_points=num_points,
                                       use_cuda_kernel=use_cuda_kernel)
        self.cross_attn.init_weights()  # ready at construction, as UniAD's attention; init_weights() re-runs it
        self.cross_attn_dropout = nn.Dropout(dropout)
        self.ffn = nn.Sequential(nn.Linear(embed_dims, ffn_dims), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(ffn_dims, embed_dims), nn.Dropout(dropout))
        self.norms = ModuleList([nn.LayerNorm(embed_dims) for _ in range(3)])

    def forward(self, query: Tensor, query_pos: Tensor, reference_points: Tensor, bev: Tensor,
                bev_hw: Tuple[int, int], query_padding_mask: Optional[Tensor] = None) -> Tensor:
        """One decoder layer.

        Args:
            query (Tensor): ``[B, N, C]`` query features.
            query_pos (Tensor): ``[B, N, C]`` positional embedding, added to queries and keys of both attentions.
            reference_points (Tensor): ``[B, N, 2]`` ``(x, y)`` in ``[0, 1]``: ``x`` along the BEV columns (LiDAR
                x), ``y`` along the rows (LiDAR y); cell ``(i, j)``'s centre is ``((j + 0.5) / W, (i + 0.5) / H)``;
                points outside read zeros (see :meth:`MSDeformAttn.forward`).
            bev (Tensor): ``[B, H*W, C]`` row-major BEV features.
            bev_hw (tuple[int, int]): ``(H, W)``.
            query_padding_mask (Tensor, optional): ``[B, N]`` bool, ``True`` for padded queries; they are ignored
                as keys of the self-attention (their own outputs are meaningless and must be discarded).

        Returns:
            Tensor: ``[B, N, C]``.
        """
        q = k = query + query_pos
        attended = self.self_attn(q, k, query, key_padding_mask=query_padding_mask, need_weights=False)[0]
        query = self.norms[0](query + self.self_attn_dropout(attended))
        spatial_shapes, level_start_index = single_level_shapes(*bev_hw, device=bev.device)
        attended = self.cross_attn(query + query_pos, bev, reference_points[:, :, None], spatial_shapes,
                                   level_start_index)
        query = self.norms[1](query + self.cross_attn_dropout(attended))
        return self.norms[2](query + self.ffn(query))


@MODELS.register_module('UniADTrackDecoder')
class TrackDecoder(BaseModule):
    """A stack of ``TrackDecoderLayer`` with box refinement of the reference points after every layer.

    Args:
        num_layers (int): decoder layers ``L``.
        embed_dims (int): channels ``C``.
        num_heads (int): attention heads.
        num_points (int): deformable sampling points per head.
        ffn_dims (int): FFN hidden width.
        dropout (float): dropout probability.
        use_cuda_kernel (bool): see :class:`MSDeformAttn`.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, num_layers: int = 6, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4,
                 ffn_dims: int = 512, dropout: float = 0.1, use_cuda_kernel: bool = True, init_cfg=None) -> None:
        super().__init__(init_cfg)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        self.layers = ModuleList([
            TrackDecoderLayer(embed_dims, num_heads, num_points, ffn_dims, dropout, use_cuda_kernel)
            for _ in range(num_layers)
        ])

    @property
    def num_layers(self) -> int:
        """Number of decoder layers ``L``."""
        return len(self.layers)

    def forward(self, query: Tensor, query_pos: Tensor, reference_points: Tensor, bev: Tensor,
                bev_hw: Tuple[int, int], query_padding_mask: Optional[Tensor] = None,
                reg_branches: Optional[ModuleList] = None) -> Tuple[Tensor, Tensor]:
        """Decode the queries against the BEV.

        Args:
            query (Tensor): ``[B, N, C]`` query features.
            query_pos (Tensor): ``[B, N, C]`` positional embedding.
            reference_points (Tensor): ``[B, N, 3]`` initial ``(x, y, z)`` in ``[0, 1]`` of the point cloud range
                (sigmoid space); ``x``/``y`` index the BEV columns/rows, ``z`` only takes part in refinement.
            bev (Tensor): ``[B, H*W, C]`` row-major BEV features.
            bev_hw (tuple[int, int]): ``(H, W)``.
            query_padding_mask (Tensor, optional): ``[B, N]`` bool, ``True`` for padded queries.
            reg_branches (ModuleList, optional): ``L`` regression branches ``C -> 10``; outputs ``[0, 1, 4]`` refine
                the reference in inverse-sigmoid space after every layer (detached between layers, as in
                Deformable-DETR). ``None`` keeps the references fixed.

        Returns:
            tuple[Tensor, Tensor]: ``states`` ``[L, B, N, C]`` (output of every layer) and ``references``
            ``[L, B, N, 3]`` in ``[0, 1]``: the reference after each layer's refinement (no gradient).
        """
        states, references = [], []
        for index, layer in enumerate(self.layers):
            query = layer(query, query_pos, reference_points[..., :2], bev, bev_hw, query_padding_mask)
            if reg_branches is not None:
                refined = TrackBoxCoder.refined_reference(reg_branches[index](query),
                                                          inverse_sigmoid(reference_points))
                reference_points = refined.sigmoid().detach()
            states.append(query)
            references.append(reference_points)
        return torch.stack(states), torch.stack(references)
