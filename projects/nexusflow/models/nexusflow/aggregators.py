"""Feature aggregators ``g_t``: compress one task's tapped features (:class:`TapOutput`) into an embedding ``[B, D]``.

- :class:`MLPAggregator` (the ablation of both papers; the NYUv2 default with depth 3): masked mean over the set,
  then an MLP of ``depth`` linear layers.
- :class:`QuerySetAggregator` for sparse query sets with reference points (the track queries): learned queries
  with learned reference points cross-attend over the set, each head with a Gaussian spatial prior on the distance
  between the learned point and the keys' reference points. Chosen over "splat the queries onto a coarse BEV grid,
  then deformable attention" because it is exact (no cell collisions, no quantisation of the points), invariant to
  the order of the set, honours a padding mask, and costs ``O(num_queries * Nq)`` (16 x 901 here).
- ``DeformableAggregator`` (``deformable_aggregator.py``) for BEV-shaped / feature-map taps.

The learned-query aggregators share :class:`LearnedQueryAggregator`: ``num_layers`` x (cross-attention, add & norm,
FFN, add & norm) on ``num_queries`` learned queries whose reference points start on a regular grid over
``[0, 1]^2``, then the queries are flattened (``pool='flatten'``, keeps which region each came from) or averaged
(``pool='mean'``) and projected to ``out_dim``.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ..layers import build_mlp, check_attention_heads, variance_preserving_init_
from ...core.tap_adapters import TapOutput

POOL_MODES = ('flatten', 'mean')


def reference_grid(num_points: int) -> Tensor:
    """``[num_points, 2]`` ``(x, y)`` cell centres of a near-square row-major grid over ``(0, 1)^2``."""
    rows = max(1, int(math.sqrt(num_points)))
    cols = math.ceil(num_points / rows)
    ys, xs = torch.meshgrid((torch.arange(rows) + 0.5) / rows, (torch.arange(cols) + 0.5) / cols, indexing='ij')
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)[:num_points]


def masked_mean(features: Tensor, padding_mask: Optional[Tensor]) -> Tensor:
    """Mean over the set axis of ``[B, N, C]`` ignoring ``padding_mask`` ``[B, N]`` (``True`` = padded): ``[B, C]``."""
    if padding_mask is None:
        return features.mean(dim=1)
    valid = (~padding_mask).unsqueeze(-1).to(features.dtype)
    return (features * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0)


def check_tap(tap: TapOutput, in_channels: int, owner: str) -> None:
    """Raise ``ValueError`` unless ``tap.features`` is ``[B, N, in_channels]`` with ``N >= 1``."""
    feats = tap.features
    if feats.dim() != 3 or feats.shape[2] != in_channels or feats.shape[1] < 1:
        raise ValueError(f'{owner} expects features [B, N>=1, {in_channels}] (in_channels={in_channels}), '
                         f'got shape {tuple(feats.shape)}')


@MODELS.register_module('NexusFlowMLPAggregator')
class MLPAggregator(BaseModule):
    """Masked mean over the set, then an MLP of ``depth`` He-initialised linear layers: ``[B, N, C] -> [B, out_dim]``.

    Args:
        in_channels (int): ``C`` of the tap.
        out_dim (int): embedding width ``D``.
        depth (int): number of linear layers (1 = a single projection; the NYUv2 ablation uses 1-6).
        hidden_dim (int, optional): width of the hidden layers, default ``out_dim``.
        act_cfg (dict): activation between the linear layers.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, in_channels: int, out_dim: int = 256, depth: int = 3, hidden_dim: Optional[int] = None,
                 act_cfg: dict = dict(type='ReLU'), init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth < 1:
            raise ValueError(f'depth must be >= 1, got {depth}')
        self.in_channels = in_channels
        self.out_dim = out_dim
        self.mlp = variance_preserving_init_(build_mlp(in_channels, [hidden_dim or out_dim] * (depth - 1), out_dim,
                                                       act_cfg))

    def forward(self, tap: TapOutput) -> Tensor:
        """Aggregate one tap.

        Args:
            tap (TapOutput): ``features [B, N, C]`` (positions and spatial shape are not used),
                ``padding_mask [B, N]`` optional.

        Returns:
            Tensor: ``[B, out_dim]`` float embedding.
        """
        check_tap(tap, self.in_channels, type(self).__name__)
        return self.mlp(masked_mean(tap.features, tap.padding_mask))


class LearnedQueryAggregator(BaseModule):
    """Base of the learned-query aggregators (see the module docstring); subclasses build ``self.attentions``.

    Args:
        in_channels (int): ``C`` of the tap.
        out_dim (int): embedding width ``D``.
        embed_dims (int, optional): width of the learned queries, default ``in_channels``.
        num_queries (int): number of learned queries (their reference points start on a grid).
        num_layers (int): number of attention blocks.
        ffn_dims (int, optional): hidden width of the FFNs, default ``2 * embed_dims``.
        pool (str): ``'flatten'`` (``[B, num_queries * E] -> D``) or ``'mean'`` (``[B, E] -> D``).
        act_cfg (dict): activation of the FFNs.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, in_channels: int, out_dim: int = 256, embed_dims: Optional[int] = None,
                 num_queries: int = 16, num_layers: int = 1, ffn_dims: Optional[int] = None, pool: str = 'flatten',
                 act_cfg: dict = dict(type='ReLU'), init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if pool not in POOL_MODES:
            raise ValueError(f'pool must be one of {POOL_MODES}, got {pool!r}')
        if num_queries < 1 or num_layers < 1:
            raise ValueError(f'num_queries and num_layers must be >= 1, got {num_queries} and {num_layers}')
        self.in_channels = in_channels
        self.out_dim = out_dim
        self.embed_dims = embed_dims or in_channels
        self.pool = pool
        self.query_embed = nn.Parameter(torch.randn(num_queries, self.embed_dims))
        self.reference_logits = nn.Parameter(torch.logit(reference_grid(num_queries)))
        ffn_dims = ffn_dims or 2 * self.embed_dims
        self.ffns = nn.ModuleList(
            nn.Sequential(nn.Linear(self.embed_dims, ffn_dims), build_activation_layer(act_cfg),
                          nn.Linear(ffn_dims, self.embed_dims)) for _ in range(num_layers))
        self.attn_norms = nn.ModuleList(nn.LayerNorm(self.embed_dims) for _ in range(num_layers))
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(self.embed_dims) for _ in range(num_layers))
        pooled_dims = self.embed_dims * (num_queries if pool == 'flatten' else 1)
        self.out_proj = nn.Linear(pooled_dims, out_dim)

    def reference_points(self, batch_size: int) -> Tensor:
        """Learned reference points ``[B, num_queries, 2]`` ``(x, y)`` in ``(0, 1)`` (same frame as the tap)."""
        return self.reference_logits.sigmoid().unsqueeze(0).expand(batch_size, -1, -1)

    def attend(self, layer: int, query: Tensor, reference_points: Tensor, tap: TapOutput) -> Tensor:
        """Cross-attention of block ``layer``: ``[B, num_queries, E]`` update; implemented by subclasses."""
        raise NotImplementedError(f'{type(self).__name__} must implement attend()')

    def forward(self, tap: TapOutput) -> Tensor:
        """Aggregate one tap.

        Args:
            tap (TapOutput): ``features [B, N, C]``, ``positions [B, N, 2]`` in ``[0, 1]``, optional
                ``padding_mask [B, N]`` and ``spatial_shape`` (what each subclass needs, see there).

        Returns:
            Tensor: ``[B, out_dim]`` float embedding.
        """
        check_tap(tap, self.in_channels, type(self).__name__)
        batch_size = tap.features.shape[0]
        query = self.query_embed.unsqueeze(0).expand(batch_size, -1, -1)
        reference_points = self.reference_points(batch_size)
        for layer, (attn_norm, ffn, ffn_norm) in enumerate(zip(self.attn_norms, self.ffns, self.ffn_norms)):
            query = attn_norm(query + self.attend(layer, query, reference_points, tap))
            query = ffn_norm(query + ffn(query))
        pooled = query.flatten(1) if self.pool == 'flatten' else query.mean(dim=1)
        return self.out_proj(pooled)


class GaussianPriorAttention(BaseModule):
    """Multi-head cross-attention whose logits get a per-head Gaussian log-prior on point distances.

    ``logit[h, q, k] = <W_q x_q, W_k y_k>_h / sqrt(E / H) - ||p_q - p_k||^2 / (2 sigma_h^2)``, ``sigma_h`` learned.

    Args:
        key_dims (int): channels of the keys/values.
        embed_dims (int): channels of the queries and of the output.
        num_heads (int): number of heads (must divide ``embed_dims``).
        sigma (float): initial ``sigma_h`` in normalised ``[0, 1]`` units.
    """

    def __init__(self, key_dims: int, embed_dims: int, num_heads: int = 8, sigma: float = 0.25) -> None:
        super().__init__()
        check_attention_heads(embed_dims, num_heads)
        if sigma <= 0:
            raise ValueError(f'sigma must be > 0, got {sigma}')
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(key_dims, embed_dims)
        self.v_proj = nn.Linear(key_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.log_sigma = nn.Parameter(torch.full((num_heads, ), math.log(sigma)))

    def _heads(self, x: Tensor) -> Tensor:
        """``[B, L, E] -> [B, H, L, E / H]``."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, query: Tensor, query_points: Tensor, keys: Tensor, key_points: Tensor,
                padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attend.

        Args:
            query (Tensor): ``[B, Nq, E]``.
            query_points (Tensor): ``[B, Nq, 2]`` ``(x, y)`` in ``[0, 1]``.
            keys (Tensor): ``[B, N, key_dims]`` (also the values).
            key_points (Tensor): ``[B, N, 2]`` ``(x, y)`` in ``[0, 1]``, same frame as ``query_points``.
            padding_mask (Tensor, optional): ``[B, N]`` bool, ``True`` = ignore; every sample needs a valid key.

        Returns:
            Tensor: ``[B, Nq, E]``.
        """
        sq_dist = (query_points.unsqueeze(2) - key_points.unsqueeze(1)).pow(2).sum(-1)
        inv_two_var = 0.5 * torch.exp(-2.0 * self.log_sigma).view(1, -1, 1, 1)
        bias = -sq_dist.unsqueeze(1).to(query.dtype) * inv_two_var.to(query.dtype)
        if padding_mask is not None:
            bias = bias.masked_fill(padding_mask[:, None, None, :], float('-inf'))
        out = F.scaled_dot_product_attention(
            self._heads(self.q_proj(query)), self._heads(self.k_proj(keys)), self._heads(self.v_proj(keys)),
            attn_mask=bias)
        return self.out_proj(out.transpose(1, 2).flatten(2))


@MODELS.register_module('NexusFlowQuerySetAggregator')
class QuerySetAggregator(LearnedQueryAggregator):
    """Learned queries attend over a query set with reference points (Gaussian spatial prior per head).

    For the ``'queries'`` tap of the track decoder (``[B, Nq, C]`` states, ``[B, Nq, 2]`` normalised BEV
    reference points), but any tap works: its ``positions`` are the keys' points.

    Args:
        in_channels (int): ``C`` of the tap.
        out_dim (int): embedding width ``D``.
        embed_dims (int, optional): width of the learned queries, default ``in_channels``.
        num_queries (int): number of learned queries.
        num_heads (int): attention heads.
        sigma (float): initial width of the spatial prior, in normalised ``[0, 1]`` units.
        num_layers (int): number of attention blocks.
        ffn_dims (int, optional): hidden width of the FFNs, default ``2 * embed_dims``.
        pool (str): ``'flatten'`` or ``'mean'``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, in_channels: int, out_dim: int = 256, embed_dims: Optional[int] = None,
                 num_queries: int = 16, num_heads: int = 8, sigma: float = 0.25, num_layers: int = 1,
                 ffn_dims: Optional[int] = None, pool: str = 'flatten', init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, out_dim, embed_dims, num_queries, num_layers, ffn_dims, pool,
                         init_cfg=init_cfg)
        self.attentions = nn.ModuleList(
            GaussianPriorAttention(in_channels, self.embed_dims, num_heads, sigma) for _ in range(num_layers))

    def forward(self, tap: TapOutput) -> Tensor:
        """Aggregate a query set.

        Args:
            tap (TapOutput): ``features [B, N, C]``, ``positions [B, N, 2]`` ``(x, y)`` in ``[0, 1]`` (for the
                track decoder: the reference points normalised over the BEV range, LiDAR frame), optional
                ``padding_mask [B, N]`` (``True`` = padded; each sample needs one valid entry).

        Returns:
            Tensor: ``[B, out_dim]`` float embedding.
        """
        if tap.padding_mask is not None and bool(tap.padding_mask.all(dim=1).any()):
            raise ValueError(f'{type(self).__name__}: a sample has every entry of the set padded; '
                             'each sample needs at least one valid query')
        return super().forward(tap)

    def attend(self, layer: int, query: Tensor, reference_points: Tensor, tap: TapOutput) -> Tensor:
        """Gaussian-prior attention of block ``layer`` over the whole set: ``[B, num_queries, E]``."""
        return self.attentions[layer](query, reference_points, tap.features, tap.positions, tap.padding_mask)


def dense_shape(tap: TapOutput, owner: str) -> Tuple[int, int]:
    """``(H, W)`` of a dense tap, with a ``ValueError`` for query sets or a size mismatch."""
    if tap.spatial_shape is None:
        raise ValueError(f"{owner} needs a dense tap (kind 'bev' or 'feature_map') with a spatial_shape; got a "
                         'query set: use QuerySetAggregator or MLPAggregator for it')
    height, width = tap.spatial_shape
    if height * width != tap.features.shape[1]:
        raise ValueError(f'{owner}: spatial_shape {tap.spatial_shape} does not match {tap.features.shape[1]} cells')
    return height, width
