"""Task rasters: a task's predictions (read from its head's ``pred_tap``) and labels as maps on the BEV canvas.

A raster turns the prediction dict of one task head and the labels of the batch's data samples into two
``[B, O, H, W]`` tensors on the same canvas, plus the per-sample label flag. Prediction rasters keep their autograd
graph (the PS-MTL losses train the heads through them); label rasters are built from detached ground truth.
The canvas ``(H, W)`` is the map GT's (``gt_map_instances.masks``), over ``point_cloud_range``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet3d.registry import TASK_UTILS
from .bev_render import BEVCanvas, render_box_occupancy, render_centre_heatmap, semantic_masks


def canvas_from_samples(samples: Sequence) -> Tuple[int, int]:
    """``(H, W)`` of the map GT masks of the samples (present, possibly with 0 instances, on every pipeline sample).

    Raises:
        ValueError: no sample carries ``gt_map_instances`` or two samples disagree.
    """
    shapes = {tuple(s.gt_map_instances.masks.shape[-2:]) for s in samples if 'gt_map_instances' in s}
    if len(shapes) != 1:
        raise ValueError(f'the PS-MTL rasters live on the map GT canvas, found canvases {sorted(shapes)} in the '
                         'batch; run LoadMapAnnotations in the pipeline (one canvas_size) or set canvas_size on '
                         'the plug-in')
    return shapes.pop()


def pad_objects(tensors: List[Tensor], width: int) -> Tuple[Tensor, Tensor]:
    """Stack ``B`` tensors ``[M_b, width]`` into ``[B, max(1, max M_b), width]`` (zero padded) and the ``[B, M]``
    bool mask of real rows."""
    num = max([1] + [len(t) for t in tensors])
    out = tensors[0].new_zeros((len(tensors), num, width))
    valid = torch.zeros((len(tensors), num), dtype=torch.bool, device=out.device)
    for b, tensor in enumerate(tensors):
        out[b, :len(tensor)] = tensor
        valid[b, :len(tensor)] = True
    return out, valid


class TaskRaster:
    """Base: ``channels`` output maps, the prediction keys it reads, the metainfo flag and data-sample field of its
    labels."""
    flag: str = ''
    gt_field: str = ''
    required_keys: Tuple[str, ...] = ()

    @property
    def channels(self) -> int:
        """Number of raster channels ``O``."""
        raise NotImplementedError(f'{type(self).__name__} must define channels')

    def labelled(self, samples: Sequence, device: torch.device) -> Tensor:
        """``[B]`` bool: ``metainfo[flag]`` of each sample (a missing flag counts as labelled, as in the heads)."""
        return torch.tensor([bool(s.metainfo.get(self.flag, True)) for s in samples], device=device)

    def ground_truth(self, sample, index: int):
        """The ``gt_field`` of a labelled sample (``KeyError`` when the pipeline did not load it)."""
        if self.gt_field not in sample:
            raise KeyError(f'sample {index} has {self.flag}=True but no {self.gt_field}; load the task GT in the '
                           f'pipeline (or set {self.flag}=False)')
        return sample.get(self.gt_field)

    def native_canvas(self, preds: Dict[str, Tensor]) -> Optional[Tuple[int, int]]:
        """The grid ``(H, W)`` of ``preds`` when they fix the canvas (dense image-space heads, whose labels are
        pixel maps of that size); ``None`` (the default) for rasters that render on any canvas."""
        return None

    def predictions(self, preds: Dict[str, Tensor], canvas_hw: Tuple[int, int]) -> Tensor:
        """Prediction raster ``[B, O, H, W]`` (graph kept)."""
        raise NotImplementedError(f'{type(self).__name__} must implement predictions()')

    def labels(self, samples: Sequence, canvas_hw: Tuple[int, int], device: torch.device) -> Tensor:
        """Label raster ``[B, O, H, W]`` (no graph; zeros for unlabelled samples)."""
        raise NotImplementedError(f'{type(self).__name__} must implement labels()')


@TASK_UTILS.register_module('NexusFlowTrackRaster')
class TrackRaster(TaskRaster):
    """Tracking on the canvas: ``num_classes`` centre heatmaps (+ one box-occupancy channel).

    Predictions come from ``track_head.pred_tap``: ``cls_logits`` ``[B, Nq, K]`` (sigmoid -> class scores),
    ``boxes`` ``[B, Nq, 10]`` ``(cx, cy, cz, l, w, h, sin, cos, vx, vy)`` metres, LiDAR frame, ``padding_mask``
    ``[B, Nq]`` (``True`` = not an object prediction). Labels are ``gt_instances_3d`` (``bboxes_3d`` LiDAR boxes,
    ``labels_3d``) rendered with score 1 on their class; the occupancy score of a prediction is its best class
    score.

    Args:
        num_classes (int): object classes ``K``.
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max, y_max, z_max)`` metres of the canvas.
        sigma (float): centre Gaussian standard deviation, metres.
        with_occupancy (bool): add the box-occupancy channel.
        occupancy_softness (float): edge width of the footprints, metres.
        occupancy_extent (float): footprints are drawn up to this many metres from the centre along each axis.
    """
    flag, gt_field = 'has_track_gt', 'gt_instances_3d'
    required_keys = ('cls_logits', 'boxes', 'padding_mask')

    def __init__(self, num_classes: int = 10,
                 point_cloud_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0), sigma: float = 1.0,
                 with_occupancy: bool = True, occupancy_softness: float = 0.25,
                 occupancy_extent: float = 5.0) -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        BEVCanvas.from_range(point_cloud_range, (1, 1))  # checks the range now rather than at the first loss
        self.num_classes = num_classes
        self.point_cloud_range = tuple(point_cloud_range)
        self.sigma, self.with_occupancy = sigma, with_occupancy
        self.occupancy_softness, self.occupancy_extent = occupancy_softness, occupancy_extent

    @property
    def channels(self) -> int:
        return self.num_classes + int(self.with_occupancy)

    def render(self, boxes: Tensor, scores: Tensor, valid: Tensor, canvas_hw: Tuple[int, int]) -> Tensor:
        """``[B, O, H, W]`` from boxes ``[B, N, 6]`` ``(cx, cy, l, w, sin, cos)``, class scores ``[B, N, K]`` and
        the ``[B, N]`` bool mask of objects to draw."""
        canvas = BEVCanvas.from_range(self.point_cloud_range, canvas_hw)
        maps = [render_centre_heatmap(boxes[..., :2], scores, valid, canvas, self.sigma)]
        if self.with_occupancy:
            maps.append(render_box_occupancy(boxes, scores.max(-1).values, valid, canvas, self.occupancy_softness,
                                             self.occupancy_extent))
        return torch.cat(maps, dim=1)

    def predictions(self, preds: Dict[str, Tensor], canvas_hw: Tuple[int, int]) -> Tensor:
        logits = preds['cls_logits']
        if logits.shape[-1] != self.num_classes or preds['boxes'].shape[-1] != 10:
            raise ValueError(f'{type(self).__name__}(num_classes={self.num_classes}) expects cls_logits [B, Nq, '
                             f'{self.num_classes}] and boxes [B, Nq, 10], got {tuple(logits.shape)} and '
                             f'{tuple(preds["boxes"].shape)}')
        boxes = preds['boxes'][..., [0, 1, 3, 4, 6, 7]]
        return self.render(boxes, logits.sigmoid(), ~preds['padding_mask'], canvas_hw)

    def labels(self, samples: Sequence, canvas_hw: Tuple[int, int], device: torch.device) -> Tensor:
        labelled = self.labelled(samples, device)
        boxes, classes = [], []
        for b, sample in enumerate(samples):
            gt = self.ground_truth(sample, b) if labelled[b] else None
            box = gt.bboxes_3d.tensor.detach().to(device) if gt is not None else torch.zeros((0, 7), device=device)
            cls = gt.labels_3d.to(device) if gt is not None else torch.zeros(0, dtype=torch.long, device=device)
            if len(cls) and not 0 <= int(cls.min()) <= int(cls.max()) < self.num_classes:
                raise ValueError(f'sample {b}: labels_3d must lie in [0, {self.num_classes}), got {cls.tolist()}')
            yaw = box[:, 6]
            boxes.append(torch.stack((box[:, 0], box[:, 1], box[:, 3], box[:, 4], yaw.sin(), yaw.cos()), dim=1))
            classes.append(F.one_hot(cls, self.num_classes).float())
        boxes, valid = pad_objects(boxes, 6)
        scores, _ = pad_objects(classes, self.num_classes)
        return self.render(boxes, scores, valid, canvas_hw)


@TASK_UTILS.register_module('NexusFlowMapRaster')
class MapRaster(TaskRaster):
    """Mapping on the canvas: the per-class semantic masks (divider, ped_crossing, boundary, drivable).

    Predictions come from ``map_head.pred_tap``: ``semantic`` ``[B, num_classes, H', W']`` probabilities (resized
    bilinearly when ``(H', W')`` is not the canvas). Labels are ``gt_map_instances`` united per class.

    Args:
        num_classes (int): semantic classes (things + stuff).
    """
    flag, gt_field = 'has_map_gt', 'gt_map_instances'
    required_keys = ('semantic', )

    def __init__(self, num_classes: int = 4) -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes

    @property
    def channels(self) -> int:
        return self.num_classes

    def predictions(self, preds: Dict[str, Tensor], canvas_hw: Tuple[int, int]) -> Tensor:
        semantic = preds['semantic']
        if semantic.dim() != 4 or semantic.shape[1] != self.num_classes:
            raise ValueError(f'{type(self).__name__}(num_classes={self.num_classes}) expects semantic [B, '
                             f'{self.num_classes}, H, W], got {tuple(semantic.shape)}')
        if tuple(semantic.shape[-2:]) != tuple(canvas_hw):
            semantic = F.interpolate(semantic, size=tuple(canvas_hw), mode='bilinear', align_corners=False)
        return semantic

    def labels(self, samples: Sequence, canvas_hw: Tuple[int, int], device: torch.device) -> Tensor:
        labelled = self.labelled(samples, device)
        out = torch.zeros((len(samples), self.num_classes, *canvas_hw), device=device)
        for b, sample in enumerate(samples):
            if not labelled[b]:
                continue
            gt = self.ground_truth(sample, b)
            if len(gt.labels) and not 0 <= int(gt.labels.min()) <= int(gt.labels.max()) < self.num_classes:
                raise ValueError(f'sample {b}: map labels must lie in [0, {self.num_classes}), got '
                                 f'{gt.labels.tolist()}')
            if tuple(gt.masks.shape[-2:]) != tuple(canvas_hw):
                raise ValueError(f'sample {b}: map masks on canvas {tuple(gt.masks.shape[-2:])}, expected '
                                 f'{tuple(canvas_hw)}')
            out[b] = semantic_masks(gt.labels.to(device), gt.masks.to(device), self.num_classes)
        return out
