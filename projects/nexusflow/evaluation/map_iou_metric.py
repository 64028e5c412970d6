"""Online-map IoU over the whole split, as UniAD reports it (``lanes_iou`` = its README's "IoU-lane").

UniAD (``PansegformerHead.forward_test`` / ``evaluate``) sums per-frame intersections and unions over the val set;
so does this metric, and per city. It keeps only the per-sample counts, never the masks. The figures are logged as
a table (overall and per city) at the end of the evaluation.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from mmdet3d.registry import METRICS
from .result_utils import get_meta, unique_by_token
from .tables import MAP_COLUMNS, log_tables, scope_table
from .tracking_eval import city_of

__all__ = ['MapIoUMetric', 'map_iou_counts', 'semantic_gt_masks', 'MAP_CLASSES', 'MAP_IOU_NAMES']

# the four map classes of the contract (gt_map_instances labels 0..3, pred_map['masks'] channels 0..3)
MAP_CLASSES = ('divider', 'ped_crossing', 'boundary', 'drivable')
# reported figures: the four classes and 'lanes', the union of the three thing classes
MAP_IOU_NAMES = ('divider', 'crossing', 'boundary', 'drivable', 'lanes')
# the map GT protocol whose figures carry no protocol scope (LoadMapAnnotations' default)
DEFAULT_PROTOCOL = 'lidar'


def _as_bool_tensor(masks: Any) -> torch.Tensor:
    """A tensor / array of masks as a CPU bool tensor (non-zero -> True)."""
    masks = masks if isinstance(masks, torch.Tensor) else torch.as_tensor(np.asarray(masks))
    return masks.detach().cpu() != 0


def semantic_gt_masks(labels: Any, masks: Any, num_classes: int = len(MAP_CLASSES)) -> torch.Tensor:
    """Union of the GT instance masks of each class.

    Args:
        labels: int ``[K]`` in ``[0, num_classes)`` (0 divider, 1 ped_crossing, 2 boundary, 3 drivable).
        masks: uint8/bool ``[K, H, W]`` instance masks on the BEV canvas.
        num_classes: number of map classes.

    Returns:
        bool ``[num_classes, H, W]``.
    """
    labels = torch.as_tensor(labels).detach().cpu().long().reshape(-1)
    masks = _as_bool_tensor(masks)
    if masks.dim() != 3 or masks.shape[0] != labels.numel():
        raise ValueError(f'gt_map_instances: masks must be [K, H, W] with K = {labels.numel()} labels, got '
                         f'{tuple(masks.shape)}')
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'gt_map_instances: labels must lie in [0, {num_classes}), got {labels.tolist()}')
    semantic = torch.zeros((num_classes, *masks.shape[1:]), dtype=torch.bool)
    for cls in range(num_classes):
        semantic[cls] = masks[labels == cls].any(dim=0)
    return semantic


def map_iou_counts(pred_masks: Any, gt_semantic: torch.Tensor) -> Dict[str, np.ndarray]:
    """Intersection and union pixel counts of one sample for ``MAP_IOU_NAMES``.

    Args:
        pred_masks: bool ``[4, H, W]`` predicted semantic masks (divider, ped_crossing, boundary, drivable).
        gt_semantic: bool ``[4, H, W]`` GT semantic masks in the same order.

    Returns:
        dict ``intersection`` and ``union``: int64 ``[5]`` pixel counts for divider, crossing, boundary, drivable,
        lanes (union of the three thing classes).
    """
    pred = _as_bool_tensor(pred_masks)
    if tuple(pred.shape) != tuple(gt_semantic.shape):
        raise ValueError(f'pred_map["masks"] must be [4, H, W] on the GT canvas {tuple(gt_semantic.shape)}, got '
                         f'{tuple(pred.shape)}')
    pred = torch.cat([pred, pred[:3].any(dim=0, keepdim=True)])
    gt = torch.cat([gt_semantic, gt_semantic[:3].any(dim=0, keepdim=True)])
    return dict(intersection=(pred & gt).flatten(1).sum(1).numpy().astype(np.int64),
                union=(pred | gt).flatten(1).sum(1).numpy().astype(np.int64))


@METRICS.register_module('NexusFlowMapIoUMetric')
class MapIoUMetric(BaseMetric):
    """Semantic map IoU in percent, intersections and unions summed over the whole split (and per city).

    Each processed sample needs ``pred_map['masks']`` (bool ``[4, H, W]``), ``gt_map_instances`` (``labels [K]``,
    ``masks [K, H, W]``), the meta key ``token`` and, with ``per_city``, ``location``. Samples whose ``has_map_gt``
    is False (geo-split) are left out of the sums. A class whose union is empty over the split gets NaN.
    The meta key ``map_gt_protocol`` (set by ``LoadMapAnnotations``; ``'lidar'`` when absent) names the GT
    protocol: figures against another protocol's GT are reported under ``<protocol>/`` (e.g.
    ``map/uniad/lanes_iou``), so that they are never mistaken for the default ones; a split mixing protocols is
    refused.

    Args:
        per_city: also report ``<city>/<name>_iou`` (``boston``, ``singapore``).
        collect_device: ``'cpu'`` or ``'gpu'``.
        prefix: prefix of the metric names; None -> ``'map'``.

    Metric names (under ``<prefix>/``, then ``<protocol>/`` unless the protocol is ``'lidar'``): ``lanes_iou,
    drivable_iou, divider_iou, crossing_iou, boundary_iou`` and ``<city>/<name>_iou``.
    """
    default_prefix = 'map'

    def __init__(self, per_city: bool = True, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.per_city = per_city

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Append ``dict(token, city, valid, intersection [5], union [5])`` per sample; ``data_batch`` unused."""
        name = type(self).__name__
        for sample in data_samples:
            gt = get_meta(sample, 'gt_map_instances', name)
            pred = get_meta(sample, 'pred_map', name)
            if 'masks' not in pred:
                raise KeyError(f'{name}: pred_map lacks "masks" (bool [4, H, W]); got keys {sorted(pred)}')
            counts = map_iou_counts(pred['masks'], semantic_gt_masks(gt['labels'], gt['masks']))
            city = city_of(get_meta(sample, 'location', name)) if self.per_city else ''
            self.results.append(dict(token=str(get_meta(sample, 'token', name)), city=city,
                                     valid=bool(sample.get('has_map_gt', True)),
                                     protocol=str(sample.get('map_gt_protocol', DEFAULT_PROTOCOL)), **counts))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """IoU in percent from the summed counts of the samples with map GT (sorted by token, deduplicated)."""
        records = [rec for rec in unique_by_token(results, type(self).__name__) if rec['valid']]
        protocols = sorted({rec.get('protocol', DEFAULT_PROTOCOL) for rec in records})
        if len(protocols) > 1:
            raise ValueError(f'MapIoUMetric: the map GT of the split was drawn with several protocols {protocols}; '
                             f'give every LoadMapAnnotations of the test pipeline the same protocol')
        scope = '' if protocols in ([], [DEFAULT_PROTOCOL]) else f'{protocols[0]}/'
        metrics = _ious(records, prefix=scope)
        if self.per_city:
            for city in sorted({rec['city'] for rec in records}):
                metrics.update(_ious([rec for rec in records if rec['city'] == city], prefix=f'{scope}{city}/'))
        log_tables(scope_table(f'map IoU (%, {len(records)} samples with map GT)', metrics, MAP_COLUMNS))
        return metrics


def _ious(records: List[dict], prefix: str) -> Dict[str, float]:
    """``{prefix}{name}_iou`` = 100 * sum(intersection) / sum(union), NaN where the union is empty."""
    inter = np.sum([rec['intersection'] for rec in records], axis=0) if records else np.zeros(len(MAP_IOU_NAMES))
    union = np.sum([rec['union'] for rec in records], axis=0) if records else np.zeros(len(MAP_IOU_NAMES))
    return {f'{prefix}{name}_iou': float(100.0 * i / u) if u > 0 else float('nan')
            for name, i, u in zip(MAP_IOU_NAMES, inter, union)}
