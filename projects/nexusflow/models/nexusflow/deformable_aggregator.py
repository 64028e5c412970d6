"""``DeformableAggregator``: learned queries with learned reference points attend over a BEV / feature map.

The paper's aggregator ``g'`` is "a deformable transformer (Zhu et al. 2020)" with no further detail. This one uses
the single-level case of the plugin's :class:`~projects.nexusflow.models.layers.MSDeformAttn` (Deformable-DETR's
sampling offsets predicted from the query in grid cells, a softmax over the sampled points of each head, the ring
initialisation of the offsets; sampling through the plugin's shared op), and changes: queries and reference points
are learned parameters (no input-dependent proposals), and the result is pooled and projected to one vector per
sample.
"""
from typing import Optional

from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ..layers import MSDeformAttn
from ..ops import single_level_shapes
from .aggregators import LearnedQueryAggregator, dense_shape
from ...core.tap_adapters import TapOutput


@MODELS.register_module('NexusFlowDeformableAggregator')
class DeformableAggregator(LearnedQueryAggregator):
    """Learned queries + learned reference points, deformable attention over a dense tap, pooled to ``[B, D]``.

    Args:
        in_channels (int): ``C`` of the tap (``[B, H*W, C]`` BEV or ``[B, C, H, W]`` feature map).
        out_dim (int): embedding width ``D``.
        embed_dims (int, optional): width of the learned queries, default ``in_channels``.
        num_queries (int): learned queries; their reference points start on a regular grid over the map.
        num_heads (int): attention heads.
        num_points (int): sampling points per head.
        num_layers (int): number of (deformable attention, FFN) blocks.
        ffn_dims (int, optional): hidden width of the FFNs, default ``2 * embed_dims``.
        pool (str): ``'flatten'`` (keeps which region each query read) or ``'mean'``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, in_channels: int, out_dim: int = 256, embed_dims: Optional[int] = None,
                 num_queries: int = 16, num_heads: int = 8, num_points: int = 4, num_layers: int = 1,
                 ffn_dims: Optional[int] = None, pool: str = 'flatten', init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, out_dim, embed_dims, num_queries, num_layers, ffn_dims, pool,
                         init_cfg=init_cfg)
        self.attentions = nn.ModuleList(
            self._attention(in_channels, num_heads, num_points) for _ in range(num_layers))

    def _attention(self, in_channels: int, num_heads: int, num_points: int) -> MSDeformAttn:
        """One single-level deformable attention from the ``E``-wide queries into the ``C``-wide tap, initialised
        at construction (the plain ``nn.ModuleList`` keeps mmengine's ``init_weights`` from re-drawing it)."""
        attention = MSDeformAttn(self.embed_dims, num_heads, num_levels=1, num_points=num_points,
                                 value_dims=in_channels)
        attention.init_weights()
        return attention

    def attend(self, layer: int, query: Tensor, reference_points: Tensor, tap: TapOutput) -> Tensor:
        """Deformable attention of block ``layer`` over the dense tap.

        Args:
            layer (int): block index.
            query (Tensor): ``[B, num_queries, E]`` learned queries.
            reference_points (Tensor): ``[B, num_queries, 2]`` ``(x, y)`` in ``(0, 1)`` of the tap's grid
                (``x`` along the columns).
            tap (TapOutput): ``features [B, H*W, C]`` row-major, ``spatial_shape (H, W)``, optional
                ``padding_mask [B, H*W]`` (``True`` cells read as zeros).

        Returns:
            Tensor: ``[B, num_queries, E]``.
        """
        height, width = dense_shape(tap, type(self).__name__)
        spatial_shapes, level_start_index = single_level_shapes(height, width, device=query.device)
        return self.attentions[layer](query, tap.features, reference_points[:, :, None], spatial_shapes,
                                      level_start_index, tap.padding_mask)
