"""Memory bank of track embeddings: temporal attention over each track's past embeddings, then a save step.

Follows UniAD's ``MemoryBank`` (from MOTR): a track whose newest memory slot is filled attends (query = its
current embedding) to its ``memory_bank_len`` past embeddings, followed by add & norm, FFN, add & norm. The result
is projected by ``save_proj`` and pushed into the memory (oldest slot dropped). In training every query with score
above ``score_thresh`` is saved each frame; at inference a query is saved only every ``save_period`` frames.
Changed: ``save_period`` is a constructor argument (UniAD hard-codes 3), updates are out-of-place (autograd-safe).
"""
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import xavier_matrices_
from .instances import TrackInstances


@MODELS.register_module('UniADTrackMemoryBank')
class TrackMemoryBank(BaseModule):
    """Temporal attention over, and update of, the per-track memory of one sample.

    Args:
        embed_dims (int): channels ``C``.
        num_heads (int): heads of the temporal attention.
        ffn_dims (int, optional): FFN hidden width; ``None`` uses ``embed_dims`` as UniAD.
        memory_bank_len (int): memory slots ``L`` per track.
        save_period (int): at inference, frames between two saves of the same query.
        score_thresh (float): only queries with ``score > score_thresh`` are saved.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, ffn_dims: Optional[int] = None,
                 memory_bank_len: int = 4, save_period: int = 3, score_thresh: float = 0.0, init_cfg=None) -> None:
        super().__init__(init_cfg)
        if memory_bank_len < 1 or save_period < 1:
            raise ValueError(f'memory_bank_len and save_period must be >= 1, got {memory_bank_len} and '
                             f'{save_period}')
        ffn_dims = ffn_dims or embed_dims
        self.memory_bank_len, self.save_period, self.score_thresh = memory_bank_len, save_period, score_thresh
        self.save_proj = nn.Linear(embed_dims, embed_dims)
        self.temporal_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=0.0, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(embed_dims, ffn_dims), nn.ReLU(inplace=True),
                                 nn.Linear(ffn_dims, embed_dims))
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dims) for _ in range(2)])

    def init_weights(self) -> None:
        """Xavier-uniform init of every weight matrix, as UniAD's memory bank."""
        super().init_weights()
        xavier_matrices_(self)

    def forward(self, tracks: TrackInstances) -> TrackInstances:
        """Attend to the memory, then save into it.

        Args:
            tracks (TrackInstances): ``T`` queries of one sample with ``output_embedding`` ``[T, C]``,
                ``scores`` ``[T]``, ``mem_bank`` ``[T, L, C]``, ``mem_padding_mask`` ``[T, L]`` (``True`` = empty
                slot) and ``save_period`` ``[T]`` long.

        Returns:
            TrackInstances: a new set with updated ``output_embedding``, ``mem_bank``, ``mem_padding_mask`` and
            ``save_period``.
        """
        tracks = tracks[:]
        if len(tracks) == 0:
            return tracks
        tracks.output_embedding = self._attend(tracks.output_embedding, tracks.mem_bank, tracks.mem_padding_mask)
        self._save(tracks)
        return tracks

    def _attend(self, embed: Tensor, memory: Tensor, empty: Tensor) -> Tensor:
        """``[T, C]`` embeddings after temporal attention; tracks whose newest slot is empty are unchanged."""
        valid = ~empty[:, -1]
        if not bool(valid.any()):
            return embed
        query = embed[valid][:, None]                                            # [n, 1, C]
        attended = self.temporal_attn(query, memory[valid], memory[valid], key_padding_mask=empty[valid],
                                      need_weights=False)[0][:, 0]
        updated = self.norms[0](embed[valid] + attended)
        updated = self.norms[1](updated + self.ffn(updated))
        out = embed.clone()
        out[valid] = updated
        return out

    def _save(self, tracks: TrackInstances) -> None:
        """Push ``save_proj(output_embedding)`` into the memory of the queries due for saving (in place on
        ``tracks``' fields, which ``forward`` has already copied)."""
        above = tracks.scores > self.score_thresh
        if self.training:
            saved, period = above, tracks.save_period
        else:
            saved = (tracks.save_period == 0) & above
            period = torch.where(saved, torch.full_like(tracks.save_period, self.save_period),
                                 (tracks.save_period - 1).clamp(min=0))
        shifted_bank = torch.cat((tracks.mem_bank[:, 1:], self.save_proj(tracks.output_embedding)[:, None]), dim=1)
        shifted_mask = torch.cat((tracks.mem_padding_mask[:, 1:], torch.zeros_like(tracks.mem_padding_mask[:, :1])),
                                 dim=1)
        tracks.mem_bank = torch.where(saved[:, None, None], shifted_bank, tracks.mem_bank)
        tracks.mem_padding_mask = torch.where(saved[:, None], shifted_mask, tracks.mem_padding_mask)
        tracks.save_period = period
