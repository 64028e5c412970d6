"""Heatmap-initialised fresh queries for the track head (an option; UniAD places them by learned embeddings).

DETR-style detectors learn slowly from scratch: each fresh query starts at a learned, input-independent reference
point and the Hungarian matching gives it a sparse, unstable signal. TransFusion (Bai et al., CVPR 2022) and
CenterFormer start the queries where a dense class heatmap on the BEV peaks, so the decoder only refines boxes
around likely objects. This module does that for the track head's fresh queries:

* a small conv head predicts a per-class centre heatmap ``[B, K, bev_h, bev_w]`` from the BEV, trained with a
  Gaussian focal loss on CenterPoint-style targets (a Gaussian per GT centre whose radius follows the box size);
* the ``num_queries`` highest local maxima (3x3 max-pool NMS, classes merged) become the fresh queries: their
  reference ``(x, y)`` is the peak's cell centre, ``z`` comes from the head's learned reference, and the BEV feature
  at the peak is added to the query content;
* with ``track_radius`` (an option), the cells within that many cells (Chebyshev distance) of a carried track's
  reference point are excluded from the peaks, in training and at inference alike, as heatmap-based 3D trackers
  do for their new-object queries: an object that already has a track gets no second, fresh query at its peak, so
  the fresh queries start on objects without a track and the tracker does not give one object several ids.

Tracked queries, the ego query, matching, QIM and the losses of the decoder are unchanged. Enabled by
``UniADTrackHead(heatmap_init=dict(...))``; the tiny CPU configs use it, the full-size ones keep UniAD's queries.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet3d.models.utils import draw_heatmap_gaussian, gaussian_radius
from mmengine.model import BaseModule, bias_init_with_prob
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from .targets import FrameTargets


@MODELS.register_module('UniADHeatmapQueryInit')
class HeatmapQueryInit(BaseModule):
    """Class heatmap on the BEV and top-k peak selection.

    Args:
        embed_dims (int): BEV channels ``C``.
        num_classes (int): classes ``K``.
        bev_h, bev_w (int): BEV grid (row ``i`` <-> LiDAR y, column ``j`` <-> LiDAR x, row-major).
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max, y_max, z_max)`` in metres.
        num_queries (int): peaks taken per sample (the head's ``num_query``).
        nms_kernel (int): odd max-pool window of the peak NMS.
        min_radius (int): smallest Gaussian radius in cells.
        min_overlap (float): CenterPoint's ``gaussian_overlap`` for the radius.
        loss_weight (float): weight of the Gaussian focal loss.
        track_radius (int, optional): exclude the cells within this Chebyshev distance (in cells) of a carried
            track from the peaks; ``None`` (default) takes the peaks wherever they are.
    """

    def __init__(self, embed_dims: int, num_classes: int, bev_h: int, bev_w: int,
                 point_cloud_range: Sequence[float], num_queries: int, nms_kernel: int = 3, min_radius: int = 1,
                 min_overlap: float = 0.1, loss_weight: float = 1.0, track_radius: Optional[int] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if nms_kernel < 1 or nms_kernel % 2 == 0:
            raise ValueError(f'nms_kernel must be an odd number >= 1, got {nms_kernel}')
        if not 0 < num_queries <= bev_h * bev_w:
            raise ValueError(f'num_queries must be in [1, bev_h * bev_w = {bev_h * bev_w}], got {num_queries}')
        self.num_classes, self.bev_h, self.bev_w = num_classes, bev_h, bev_w
        self.pc_range = tuple(float(v) for v in point_cloud_range)
        if track_radius is not None and track_radius < 0:
            raise ValueError(f'track_radius must be None or >= 0 cells, got {track_radius}')
        self.num_queries, self.nms_kernel, self.track_radius = num_queries, nms_kernel, track_radius
        self.min_radius, self.min_overlap = int(min_radius), float(min_overlap)
        self.net = nn.Sequential(nn.Conv2d(embed_dims, embed_dims, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(embed_dims, num_classes, 1))
        self.loss_fn = MODELS.build(dict(type='mmdet.GaussianFocalLoss', loss_weight=loss_weight))

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.constant_(self.net[-1].bias, bias_init_with_prob(0.1))

    def forward(self, bev: Tensor) -> Tensor:
        """``[B, bev_h * bev_w, C]`` -> heatmap logits ``[B, K, bev_h, bev_w]`` (fp32)."""
        grid = bev.transpose(1, 2).reshape(bev.shape[0], -1, self.bev_h, self.bev_w)
        return self.net(grid).float()

    @torch.no_grad()
    def peaks(self, logits: Tensor, tracked: Optional[Sequence[Optional[Tensor]]] = None) -> Tensor:
        """Flat cell indices ``[B, num_queries]`` of the highest local maxima (classes merged), best first.

        ``tracked``: per sample the unit ``(x, y)`` ``[M, 2]`` of the carried tracks (or None); with
        ``track_radius`` their neighbourhoods rank after every other cell.
        """
        heat = logits.sigmoid().amax(dim=1, keepdim=True)                          # [B, 1, H, W]
        pooled = F.max_pool2d(heat, self.nms_kernel, stride=1, padding=self.nms_kernel // 2)
        heat = torch.where(heat == pooled, heat, heat - 1.0)                        # non-maxima rank last
        if self.track_radius is not None and tracked is not None:
            heat = heat - 2.0 * self.tracked_cells(tracked, heat.device)
        return heat.flatten(1).topk(self.num_queries, dim=1).indices

    def tracked_cells(self, tracked: Sequence[Optional[Tensor]], device) -> Tensor:
        """``[B, 1, H, W]`` float mask, 1 within ``track_radius`` cells of a tracked unit ``(x, y)`` ``[M, 2]``."""
        mask = torch.zeros(len(tracked), 1, self.bev_h, self.bev_w, device=device)
        for b, xy in enumerate(tracked):
            if xy is None or len(xy) == 0:
                continue
            cols = (xy[:, 0].float() * self.bev_w).floor().long().clamp(0, self.bev_w - 1)
            rows = (xy[:, 1].float() * self.bev_h).floor().long().clamp(0, self.bev_h - 1)
            mask[b, 0, rows.to(device), cols.to(device)] = 1.0
        size = 2 * self.track_radius + 1
        return F.max_pool2d(mask, size, stride=1, padding=self.track_radius)

    def unit_xy(self, cells: Tensor) -> Tensor:
        """Flat cell indices ``[...]`` -> their centres as unit BEV locations ``[..., 2]`` (x, y)."""
        rows, cols = cells // self.bev_w, cells % self.bev_w
        return torch.stack(((cols.float() + 0.5) / self.bev_w, (rows.float() + 0.5) / self.bev_h), dim=-1)

    def targets(self, target: FrameTargets, device) -> Tensor:
        """CenterPoint heatmap ``[K, bev_h, bev_w]`` of one sample's GT (zeros without labels)."""
        heat = torch.zeros(self.num_classes, self.bev_h, self.bev_w, device=device)
        x_min, y_min, _, x_max, y_max, _ = self.pc_range
        cell_x, cell_y = (x_max - x_min) / self.bev_w, (y_max - y_min) / self.bev_h
        if len(target) == 0:
            return heat
        boxes = target.boxes.detach().float().cpu()
        cols, rows = (boxes[:, 0] - x_min) / cell_x, (boxes[:, 1] - y_min) / cell_y
        for box, col, row, label in zip(boxes, cols.tolist(), rows.tolist(), target.labels.tolist()):
            if 0 <= col < self.bev_w and 0 <= row < self.bev_h:
                radius = gaussian_radius((box[3] / cell_x, box[4] / cell_y), min_overlap=self.min_overlap)
                draw_heatmap_gaussian(heat[label], torch.tensor([int(col), int(row)], device=device),
                                      max(self.min_radius, int(radius)))
        return heat

    def loss(self, logits: Tensor, targets: List[FrameTargets]) -> Tensor:
        """Gaussian focal loss of ``[B, K, H, W]`` logits, each sample weighted by its label flag, normalised by
        the labelled GT count (at least 1)."""
        heat = torch.stack([self.targets(t, logits.device) for t in targets])
        weight = logits.new_tensor([t.weight for t in targets]).view(-1, 1, 1, 1).expand_as(logits)
        num = max(1.0, float(sum(t.weight * len(t) for t in targets)))
        pred = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
        return self.loss_fn(pred, heat, weight=weight, avg_factor=num)

    def query_inputs(self, bev: Tensor, logits: Tensor,
                     tracked: Optional[Sequence[Optional[Tensor]]] = None) -> Tuple[Tensor, Tensor]:
        """Per sample the peaks' unit ``(x, y)`` ``[B, Nq, 2]`` and BEV features ``[B, Nq, C]`` (``tracked``: see
        :meth:`peaks`)."""
        cells = self.peaks(logits, tracked)
        feats = torch.gather(bev, 1, cells.unsqueeze(-1).expand(-1, -1, bev.shape[-1]))
        return self.unit_xy(cells), feats
