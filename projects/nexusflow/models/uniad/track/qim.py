"""Query interaction module (QIM): chooses the queries carried into the next frame and updates their embeddings.

Follows UniAD's ``QueryInteractionModule`` (from MOTR): during training the active tracks are randomly dropped
(``random_drop``) and false-positive queries are added (``fp_ratio``: for each kept track, with probability
``fp_ratio``, one of the highest-scoring free queries); the carried queries then attend to each other and their
``query_pos`` / ``query_feat`` halves are updated from the decoder output. Changed: which tracks count as active is
decided by the caller (the head: matched with IoU >= ``gt_iou_threshold`` in training, a live id at inference), the
ego query is never picked as a false positive, and ``B`` samples are handled one by one with no shared state.
"""
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import xavier_matrices_
from .instances import FREE_ID, TrackInstances


@MODELS.register_module('UniADTrackQIM')
class QueryInteractionModule(BaseModule):
    """Select and update the track queries of one sample.

    Args:
        embed_dims (int): channels ``C`` (queries are ``2C``: position half then feature half).
        num_heads (int): heads of the self-attention among carried tracks.
        ffn_dims (int): hidden width of the FFNs; ``None`` uses ``embed_dims`` as UniAD.
        merger_dropout (float): dropout of attention and FFNs.
        update_query_pos (bool): also update the positional half of the query.
        fp_ratio (float): probability, per kept track, of carrying one false-positive free query (training).
        random_drop (float): probability of dropping each active track (training).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, ffn_dims: Optional[int] = None,
                 merger_dropout: float = 0.0, update_query_pos: bool = True, fp_ratio: float = 0.3,
                 random_drop: float = 0.1, init_cfg=None) -> None:
        super().__init__(init_cfg)
        for name, value in (('fp_ratio', fp_ratio), ('random_drop', random_drop)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} must be a probability in [0, 1], got {value}')
        ffn_dims = ffn_dims or embed_dims
        self.embed_dims, self.fp_ratio, self.random_drop = embed_dims, fp_ratio, random_drop
        self.update_query_pos = update_query_pos
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=merger_dropout, batch_first=True)
        self.attn_norm = nn.LayerNorm(embed_dims)
        self.ffn = self._ffn(embed_dims, ffn_dims, merger_dropout)
        self.ffn_norm = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(merger_dropout)
        if update_query_pos:
            self.pos_ffn = self._ffn(embed_dims, ffn_dims, merger_dropout)
            self.pos_norm = nn.LayerNorm(embed_dims)
        self.feat_ffn = self._ffn(embed_dims, ffn_dims, merger_dropout)
        self.feat_norm = nn.LayerNorm(embed_dims)

    def init_weights(self) -> None:
        """Xavier-uniform init of every weight matrix, as UniAD's QIM."""
        super().init_weights()
        xavier_matrices_(self)

    @staticmethod
    def _ffn(embed_dims: int, ffn_dims: int, dropout: float) -> nn.Sequential:
        return nn.Sequential(nn.Linear(embed_dims, ffn_dims), nn.ReLU(inplace=True), nn.Dropout(dropout),
                             nn.Linear(ffn_dims, embed_dims), nn.Dropout(dropout))

    def select(self, tracks: TrackInstances, active: Tensor) -> TrackInstances:
        """The queries of one sample to carry into the next frame.

        Args:
            tracks (TrackInstances): all decoded queries of the sample (fields ``obj_ids``, ``scores``).
            active (Tensor): ``[N]`` bool, the tracks the caller keeps.

        Returns:
            TrackInstances: in eval mode ``tracks[active]``; in training the active tracks after random drop,
            followed by the false-positive free queries (highest scores first).
        """
        carried = tracks[active]
        if not self.training:
            return carried
        if self.random_drop > 0 and len(carried) > 0:
            carried = carried[torch.rand(len(carried), device=active.device) >= self.random_drop]
        if self.fp_ratio <= 0 or len(carried) == 0:
            return carried
        num_fp = int(torch.bernoulli(torch.full((len(carried), ), self.fp_ratio, device=active.device)).sum())
        free = tracks[(tracks.obj_ids == FREE_ID) & ~active]
        if num_fp == 0 or len(free) == 0:
            return carried
        order = torch.argsort(free.scores, descending=True, stable=True)[:num_fp]
        return TrackInstances.cat([carried, free[order]])

    def forward(self, tracks: TrackInstances) -> TrackInstances:
        """Update the queries of the carried tracks of one sample from their decoder output.

        Args:
            tracks (TrackInstances): ``T >= 0`` carried queries with ``query`` ``[T, 2C]`` and
                ``output_embedding`` ``[T, C]``.

        Returns:
            TrackInstances: a new set of the same tracks whose ``query`` ``[T, 2C]`` is updated.
        """
        tracks = tracks[:]
        if len(tracks) == 0:
            return tracks
        query_pos, query_feat = tracks.query.split(self.embed_dims, dim=-1)
        embed = tracks.output_embedding
        q = k = (query_pos + embed)[None]
        attended = self.self_attn(q, k, embed[None], need_weights=False)[0][0]
        tgt = self.attn_norm(embed + self.dropout(attended))
        tgt = self.ffn_norm(tgt + self.ffn(tgt))
        if self.update_query_pos:
            query_pos = self.pos_norm(query_pos + self.pos_ffn(tgt))
        query_feat = self.feat_norm(query_feat + self.feat_ffn(tgt))
        tracks.query = torch.cat((query_pos, query_feat), dim=-1)
        return tracks
