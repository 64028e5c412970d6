"""The map head's deformable transformer over one BEV level (UniAD ``SegDeformableTransformer``, one level).

Follows UniAD ``seg_head_plugin/seg_deformable_transformer.py`` (single-stage, no two-stage proposals): sine
positional encoding (``normalize=True, offset=-0.5``), deformable encoder, reference points predicted from the query
positional half of the query embedding, decoder with box refinement. Changed: one level (issue #108; ``compat='uniad'``
reproduces UniAD's 4-level attentions on it, ``uniad_compat.py``), no level embedding (the converter folds UniAD's
``level_embeds[0]`` into the encoder's attention biases), no padding masks (a BEV grid has none), batch-first tensors.
"""
from typing import Optional, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import MSDeformAttn, xavier_linear_, xavier_matrices_
from .decoder import MapDecoder
from .encoder import MapEncoder


@MODELS.register_module('UniADMapTransformer')
class MapTransformer(BaseModule):
    """Positional encoding + :class:`MapEncoder` + :class:`MapDecoder`.

    Args:
        embed_dims (int): Channels ``C`` (even: half goes to each sine axis).
        num_encoder_layers (int): Encoder layers.
        num_decoder_layers (int): Decoder layers.
        num_heads (int): Attention heads everywhere.
        num_points (int): Deformable sampling points per head.
        ffn_dims (int): FFN hidden channels.
        dropout (float): Dropout of attentions and FFNs.
        num_reg_fcs (int): Hidden layers of the decoder's regression branches.
        use_cuda_kernel (bool): See :class:`MSDeformAttn`.
        compat (str, optional): ``None`` (one-level attentions) or ``'uniad'`` (UniAD's ``num_levels=4``
            attentions fed the one BEV level, as mmcv's CUDA kernel reads them; parameters of the official shapes).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 num_heads: int = 8, num_points: int = 4, ffn_dims: int = 512, dropout: float = 0.1,
                 num_reg_fcs: int = 2, use_cuda_kernel: bool = True, compat: Optional[str] = None,
                 init_cfg: dict = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % 2 != 0:
            raise ValueError(f'embed_dims must be even for the sine positional encoding, got {embed_dims}')
        self.embed_dims = embed_dims
        self.positional_encoding = MODELS.build(dict(type='mmdet.SinePositionalEncoding', num_feats=embed_dims // 2,
                                                     normalize=True, offset=-0.5))
        self.encoder = MapEncoder(num_encoder_layers, embed_dims, num_heads, num_points, ffn_dims, dropout,
                                  use_cuda_kernel, compat)
        self.decoder = MapDecoder(num_decoder_layers, embed_dims, num_heads, num_points, ffn_dims, dropout,
                                  num_reg_fcs, use_cuda_kernel, compat)
        self.reference_points = nn.Linear(embed_dims, 2)

    def init_weights(self) -> None:
        """UniAD/Deformable-DETR init: Xavier for every matrix, then the deformable attentions' own init, the
        reference-point layer and the regression branches."""
        xavier_matrices_(self)
        for module in self.modules():
            if isinstance(module, MSDeformAttn):
                module.init_weights()
        xavier_linear_(self.reference_points)
        self.decoder.init_regression()

    def bev_positional_encoding(self, bev: Tensor, bev_hw: Tuple[int, int]) -> Tensor:
        """``[B, HW, C]`` sine embedding of the BEV cells (row-major), same dtype and device as ``bev``."""
        bev_h, bev_w = bev_hw
        no_padding = bev.new_zeros((1, bev_h, bev_w), dtype=bool)
        pos = self.positional_encoding(no_padding).flatten(2).transpose(1, 2)  # [1, HW, C]
        return pos.to(bev.dtype).expand(bev.shape[0], -1, -1)

    def forward(self, bev: Tensor, query_embed: Tensor, bev_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tensor]:
        """Encode the BEV and decode the thing queries.

        Args:
            bev (Tensor): ``[B, bev_h * bev_w, C]`` float BEV features, batch-first, row-major (row ``i`` <-> LiDAR
                ``y``, column ``j`` <-> LiDAR ``x``).
            query_embed (Tensor): ``[Nq, 2C]`` query embedding: first half positional, second half content
                (UniAD's split order).
            bev_hw (tuple[int, int]): ``(bev_h, bev_w)``.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``memory`` ``[B, HW, C]`` (encoder output), ``states``
            ``[L, B, Nq, C]`` and ``boxes`` ``[L, B, Nq, 4]`` (``cx, cy, w, h`` in ``(0, 1)`` of the canvas).
        """
        if query_embed.dim() != 2 or query_embed.shape[1] != 2 * self.embed_dims:
            raise ValueError(f'query_embed must be [Nq, {2 * self.embed_dims}], got {tuple(query_embed.shape)}')
        bs = bev.shape[0]
        memory = self.encoder(bev, self.bev_positional_encoding(bev, bev_hw), bev_hw)
        query_pos, query = query_embed.split(self.embed_dims, dim=1)
        query_pos = query_pos.unsqueeze(0).expand(bs, -1, -1)
        query = query.unsqueeze(0).expand(bs, -1, -1)
        reference_points = self.reference_points(query_pos).sigmoid()
        states, boxes = self.decoder(query, query_pos, memory, reference_points, bev_hw)
        return memory, states, boxes
