"""Panoptic-SegFormer mask decoder: queries cross-attend to the BEV memory and masks come from the attention maps.

Follows UniAD ``seg_head_plugin/seg_mask_head.py`` (``SegMaskHead``: blocks of [optional query self-attention],
cross-attention whose per-head pre-softmax maps are fused by a small MLP into a mask, MLP; plus a final
attention-only "tail" that gives the last mask). Changed:
- masks are **logits** (no ReLU after the fusing MLP); losses and post-processing apply a sigmoid, so the mask
  threshold is a probability;
- the positional embedding is added to the attention inputs only (standard DETR); UniAD adds it to the query
  itself before every block, so it accumulates through the residual stream;
- no drop-path (UniAD sets it to 0).

``compat='uniad'`` restores UniAD's semantics for its weights: the fusing MLP ends in a ReLU, so masks are
non-negative values that UniAD thresholds at 0.5 and feeds to its dice loss as they are (no sigmoid); the query
positional embedding is added to the query itself before every block and before the tail (self-attention reads the
sum as query, key and value; the residual stream carries it). The memory has no positional embedding in either mode
(UniAD passes ``pos_memory=None``), and UniAD's thing decoder gets no query position at all.
"""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import check_attention_heads, xavier_matrices_
from .uniad_compat import COMPAT_MODES


class MaskAttention(BaseModule):
    """Multi-head cross-attention that also returns masks fused from its per-head attention maps.

    Args:
        embed_dims (int): Channels ``C``; divisible by ``num_heads``.
        num_heads (int): Heads ``M``; the mask MLP is ``Linear(M, M)-ReLU-Linear(M, 1)`` (logits).
        with_value (bool): Also attend the values (``False`` for the final mask-only tail).
        dropout (float): Dropout of the attention weights.
        relu_mask (bool): End the mask MLP with a ReLU (UniAD's non-negative masks; same parameters).
    """

    def __init__(self, embed_dims: int, num_heads: int, with_value: bool = True, dropout: float = 0.0,
                 relu_mask: bool = False) -> None:
        super().__init__()
        check_attention_heads(embed_dims, num_heads)
        self.num_heads = num_heads
        self.scale = (embed_dims // num_heads) ** -0.5
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.mask_mlp = nn.Sequential(nn.Linear(num_heads, num_heads), nn.ReLU(), nn.Linear(num_heads, 1),
                                      *([nn.ReLU()] if relu_mask else []))
        self.with_value = with_value
        if with_value:
            self.v_proj = nn.Linear(embed_dims, embed_dims)
            self.out_proj = nn.Linear(embed_dims, embed_dims)
            self.attn_drop = nn.Dropout(dropout)

    def _split_heads(self, x: Tensor) -> Tensor:
        bs, length, channels = x.shape
        return x.view(bs, length, self.num_heads, channels // self.num_heads).transpose(1, 2)  # [B, M, len, d]

    def forward(self, query: Tensor, key: Tensor, value: Optional[Tensor] = None) -> Tuple[Optional[Tensor], Tensor]:
        """Attend ``query`` to ``key``/``value``.

        Args:
            query (Tensor): ``[B, N, C]`` queries (positional embedding already added).
            key (Tensor): ``[B, HW, C]`` memory keys.
            value (Tensor, optional): ``[B, HW, C]`` memory values; required when ``with_value``.

        Returns:
            tuple: attended features ``[B, N, C]`` (``None`` without values) and masks ``[B, N, HW]`` (logits, or
            non-negative values with ``relu_mask``).
        """
        logits = self._split_heads(self.q_proj(query)) @ self._split_heads(self.k_proj(key)).transpose(-2, -1)
        logits = logits * self.scale  # [B, M, N, HW]
        mask = self.mask_mlp(logits.permute(0, 2, 3, 1)).squeeze(-1)  # [B, N, HW]
        if not self.with_value:
            return None, mask
        weights = self.attn_drop(logits.softmax(-1))
        out = (weights @ self._split_heads(self.v_proj(value))).transpose(1, 2).flatten(2)  # [B, N, C]
        return self.out_proj(out), mask


class MaskDecoderBlock(BaseModule):
    """[self-attention, norm] -> mask cross-attention, norm -> MLP (GELU, ``mlp_ratio * C``), norm.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Attention heads.
        self_attn (bool): Query self-attention first (the stuff decoder uses it).
        mlp_ratio (float): MLP hidden size over ``C``.
        dropout (float): Dropout of attentions and MLP.
        relu_mask (bool): See :class:`MaskAttention`.
    """

    def __init__(self, embed_dims: int, num_heads: int, self_attn: bool = False, mlp_ratio: float = 4.0,
                 dropout: float = 0.0, relu_mask: bool = False) -> None:
        super().__init__()
        self.self_attn = (nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)
                          if self_attn else None)
        self.cross_attn = MaskAttention(embed_dims, num_heads, with_value=True, dropout=dropout, relu_mask=relu_mask)
        hidden = int(embed_dims * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(embed_dims, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, embed_dims), nn.Dropout(dropout))
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dims, eps=1e-6) for _ in range(3 if self_attn else 2)])

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor) -> Tuple[Tensor, Tensor]:
        """``query`` ``[B, N, C]``, ``query_pos`` broadcastable to it (a scalar zero for none), ``memory``
        ``[B, HW, C]`` -> (updated query ``[B, N, C]``, masks ``[B, N, HW]``)."""
        norms = iter(self.norms)
        if self.self_attn is not None:
            q = query + query_pos
            query = next(norms)(query + self.self_attn(q, q, query, need_weights=False)[0])
        attended, mask = self.cross_attn(query + query_pos, memory, memory)
        query = next(norms)(query + attended)
        query = next(norms)(query + self.mlp(query))
        return query, mask


@MODELS.register_module('UniADMapMaskDecoder')
class MapMaskDecoder(BaseModule):
    """Mask decoder of UniAD's map head (``SegMaskHead``): one mask per block plus a final tail mask.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Attention heads (UniAD: 8).
        num_layers (int): Blocks (UniAD: 4 for things, 6 for stuff).
        self_attn (bool): Query self-attention in every block (UniAD: stuff only).
        mlp_ratio (float): MLP hidden size over ``C`` (UniAD: 4).
        dropout (float): Dropout (UniAD: 0).
        compat (str, optional): ``None`` (mask logits, position in the attention inputs) or ``'uniad'`` (ReLU
            masks, position added into the query; module docstring).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_layers: int = 4, self_attn: bool = False,
                 mlp_ratio: float = 4.0, dropout: float = 0.0, compat: Optional[str] = None,
                 init_cfg: dict = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        if compat not in COMPAT_MODES:
            raise ValueError(f'MapMaskDecoder: compat must be one of {COMPAT_MODES}, got {compat!r}')
        self.compat = compat
        relu_mask = compat == 'uniad'
        self.blocks = nn.ModuleList([MaskDecoderBlock(embed_dims, num_heads, self_attn, mlp_ratio, dropout, relu_mask)
                                     for _ in range(num_layers)])
        self.tail = MaskAttention(embed_dims, num_heads, with_value=False, relu_mask=relu_mask)

    def init_weights(self) -> None:
        """Xavier-uniform for every matrix (UniAD ``SegMaskHead._reset_parameters``)."""
        xavier_matrices_(self)

    def forward(self, query: Tensor, memory: Tensor,
                query_pos: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Decode masks for ``N`` queries over the BEV memory.

        Args:
            query (Tensor): ``[B, N, C]`` query content (``N`` may be 0).
            memory (Tensor): ``[B, bev_h * bev_w, C]`` encoder memory, row-major BEV.
            query_pos (Tensor, optional): ``[B, N, C]`` query positional embedding (``None``: none).

        Returns:
            tuple[Tensor, Tensor, Tensor]: final masks ``[B, N, HW]`` (from the tail), per-block masks
            ``[num_layers, B, N, HW]`` and per-block queries ``[num_layers, B, N, C]``. Masks are unbounded logits
            (``sigmoid`` gives the probability that a BEV cell belongs to the query's segment), or under
            ``compat='uniad'`` non-negative values used as that probability directly.
        """
        pos = query_pos if query_pos is not None else query.new_zeros(())
        masks, queries = [], []
        for block in self.blocks:
            if self.compat == 'uniad':
                query, mask = block(query + pos, query.new_zeros(()), memory)
            else:
                query, mask = block(query, pos, memory)
            masks.append(mask)
            queries.append(query)
        _, final_mask = self.tail(query + pos, memory)
        return final_mask, torch.stack(masks), torch.stack(queries)
