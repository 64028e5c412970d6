"""Spatial cross-attention (SCA) of BEVFormer: each BEV query reads the cameras that see its pillar.

Follows ``SpatialCrossAttention`` of OpenDriveLab/BEVFormer: per camera, only the BEV queries with at least one
visible pillar point are re-batched (padded to the largest hit count over cameras), attended with
``MSDeformableAttention3D``, scattered back and averaged over the hitting cameras. What changed: the hit lists are
per sample and camera (BEVFormer takes sample 0's lists for the whole batch), they are built once per forward pass
(``rebatch_camera_hits``) instead of in every layer, the re-batching is vectorised, and the scatter-back adds each
camera's unique indices in a fixed camera order (deterministic on CUDA too).
"""
from typing import NamedTuple, Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...layers import xavier_linear_
from .deformable_attention_3d import MSDeformableAttention3D


class CameraHits(NamedTuple):
    """Which BEV queries each camera of each sample sees, re-batched.

    Attributes:
        index: ``[B, N, K]`` long BEV query index of each re-batched slot: the hit queries in ascending order,
            then (padding) non-hit queries; every row is a prefix of a permutation, so no index repeats.
        valid: ``[B, N, K]`` bool, ``True`` for the hit slots.
        reference_points: ``[B, N, K, D, 2]`` unit image locations of the slots' pillar points.
        num_cams_hit: ``[B, H*W]`` number of cameras seeing each query, clamped to at least 1.
    """

    index: Tensor
    valid: Tensor
    reference_points: Tensor
    num_cams_hit: Tensor


class CameraContext(NamedTuple):
    """Inputs of SCA shared by all encoder layers of one forward pass.

    Attributes:
        value: ``[B, N, L, C]`` camera features (levels flattened row-major, camera and level embeddings added).
        spatial_shapes: ``[num_levels, 2]`` long ``(h, w)``.
        level_start_index: ``[num_levels]`` long.
        hits: the re-batched visible queries (``CameraHits``).
    """

    value: Tensor
    spatial_shapes: Tensor
    level_start_index: Tensor
    hits: CameraHits


def rebatch_camera_hits(reference_points_cam: Tensor, visible: Tensor) -> CameraHits:
    """Gather, per sample and camera, the BEV queries with at least one visible pillar point.

    Args:
        reference_points_cam (Tensor): ``[B, N, H*W, D, 2]`` unit image locations of the pillar points.
        visible (Tensor): ``[B, N, H*W, D]`` bool visibility of the pillar points.

    Returns:
        CameraHits: ``K`` = the largest hit count over samples and cameras (0 when no camera sees anything).
    """
    hit = visible.any(-1)  # [B, N, HW]
    counts = hit.sum(-1)  # [B, N]
    max_hits = int(counts.max())
    order = torch.argsort((~hit).to(torch.int32), dim=-1, stable=True)[..., :max_hits]  # [B, N, K]
    valid = torch.arange(max_hits, device=hit.device) < counts[..., None]
    num_anchors = reference_points_cam.shape[3]
    reference_points = torch.gather(reference_points_cam, 2,
                                    order[..., None, None].expand(-1, -1, -1, num_anchors, 2))
    num_cams_hit = hit.sum(1).clamp(min=1).to(reference_points_cam.dtype)  # [B, HW]
    return CameraHits(order, valid, reference_points, num_cams_hit)


@MODELS.register_module('UniADSpatialCrossAttention')
class SpatialCrossAttention(BaseModule):
    """BEVFormer's spatial cross-attention from BEV queries to the multi-camera features.

    Args:
        embed_dims (int): channels ``C``.
        num_heads (int): attention heads.
        num_levels (int): feature levels.
        num_points (int): sampling points per head and level over all pillar heights (BEVFormer: 8).
        num_anchors (int): pillar heights per query (``num_points_in_pillar``).
        dropout (float): dropout on the output before the residual.
        im2col_step (int): batch chunk of the CUDA kernel.
        use_cuda_kernel (bool): use mmcv's kernel on CUDA tensors.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 8,
                 num_anchors: int = 4, dropout: float = 0.1, im2col_step: int = 64, use_cuda_kernel: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.deformable_attention = MSDeformableAttention3D(embed_dims, num_heads, num_levels, num_points,
                                                            num_anchors, im2col_step, use_cuda_kernel)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)
        xavier_linear_(self.output_proj)

    def forward(self, query: Tensor, camera: CameraContext) -> Tensor:
        """Average, over the cameras that see it, each BEV query's deformable attention to that camera.

        Args:
            query (Tensor): ``[B, H*W, C]`` BEV queries, also the residual.
            camera (CameraContext): camera features and re-batched hits (see the class).

        Returns:
            Tensor: ``[B, H*W, C]`` ``query + dropout(output_proj(mean over hitting cameras))``; a query no
            camera sees gets ``query + dropout(output_proj(0))``.
        """
        batch, num_queries, channels = query.shape
        hits = camera.hits
        num_cams, max_hits = hits.index.shape[1:]
        slots = query.new_zeros(batch, num_queries, channels)
        if max_hits > 0:
            rebatched = torch.gather(query, 1, hits.index.reshape(batch, -1, 1).expand(-1, -1, channels))
            attended = self.deformable_attention(
                rebatched.view(batch * num_cams, max_hits, channels), camera.value.flatten(0, 1),
                hits.reference_points.flatten(0, 1), camera.spatial_shapes, camera.level_start_index)
            attended = attended.view(batch, num_cams, max_hits, channels) * hits.valid[..., None].to(attended.dtype)
            for cam in range(num_cams):
                index = hits.index[:, cam, :, None].expand(-1, -1, channels)
                slots = slots.scatter_add(1, index, attended[:, cam].to(slots.dtype))
        slots = slots / hits.num_cams_hit[..., None].to(slots.dtype)
        return query + self.dropout(self.output_proj(slots))
