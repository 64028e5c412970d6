"""``NYUv2Metric``: segmentation, depth and surface-normal metrics of the MTAN / MTPSL NYUv2 benchmark."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement

from mmdet3d.registry import METRICS
from ..meta import NUM_CLASSES
from .functional import (confusion_matrix, delta_mtl, depth_scores, depth_sums, normal_angles, normal_scores,
                         normal_sums, segmentation_scores)

# task -> (prediction field, GT field, label flag)
TASK_FIELDS = {'seg': ('pred_sem_seg', 'gt_sem_seg', 'has_seg'), 'depth': ('pred_depth', 'gt_depth', 'has_depth'),
               'normal': ('pred_normal', 'gt_normal', 'has_normal')}


def _pixels(sample: dict, name: str, owner: str):
    """``sample[name]['data']`` (a ``PixelData`` turned into a dict by the evaluator)."""
    if name not in sample:
        raise KeyError(f'{owner}: the data sample has no {name!r} (keys: {sorted(sample)}); the dataset pipeline '
                       'must end with PackNYUv2Inputs')
    value = sample[name]
    return value['data'] if isinstance(value, dict) else value.data


@METRICS.register_module('NexusFlowNYUv2Metric')
class NYUv2Metric(BaseMetric):
    """mIoU / pixel accuracy, depth abs / rel error and RMSE, normal mean / median / RMSE angle and the share under
    11.25 / 22.5 / 30 degrees, accumulated per pixel over the whole split (formulas in ``functional.py``).

    A task is scored when the model predicts it (``pred_sem_seg`` / ``pred_depth`` / ``pred_normal``); a sample
    whose flag ``has_<task>`` is ``False`` is left out of that task (evaluate with the ``'full'`` protocol).

    Args:
        num_classes (int): segmentation classes (NYUv2-13).
        delta_reference (dict, optional): reference scores (e.g. single-task ones, ``{'seg_miou': 37.45,
            'depth_abs_err': 0.6079, 'normal_mean': 25.94}``) for ``delta_mtl``; keys among the metric names.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): metric name prefix, default ``'nyuv2'``.

    Metric names (under ``<prefix>/``): ``seg_miou``, ``seg_pixel_acc`` (percent), ``depth_abs_err``,
    ``depth_rmse`` (metres), ``depth_rel_err``, ``normal_mean``, ``normal_median``, ``normal_rmse`` (degrees),
    ``normal_11.25``, ``normal_22.5``, ``normal_30`` (percent), ``delta_mtl`` (percent, with ``delta_reference``).
    """
    default_prefix = 'nyuv2'

    def __init__(self, num_classes: int = NUM_CLASSES, delta_reference: Optional[Dict[str, float]] = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes = num_classes
        self.delta_reference = dict(delta_reference) if delta_reference else None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Append one record of summable statistics per sample (``data_batch`` is unused)."""
        name = type(self).__name__
        for sample in data_samples:
            sample = sample.to_dict() if isinstance(sample, BaseDataElement) else sample
            record = {}
            for task, (pred_key, gt_key, flag) in TASK_FIELDS.items():
                if pred_key not in sample or not bool(sample.get(flag, True)):
                    continue
                pred, gt = _pixels(sample, pred_key, name), _pixels(sample, gt_key, name)
                if task == 'seg':
                    record['conf'] = confusion_matrix(pred, gt, self.num_classes)
                elif task == 'depth':
                    record['depth'] = depth_sums(pred, gt)
                else:
                    record.update({f'normal_{k}': v for k, v in normal_sums(normal_angles(pred, gt)).items()})
            self.results.append(record)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Split-level figures from the summed records (tasks without any record are not reported)."""
        scores = {}
        confs = [rec['conf'] for rec in results if 'conf' in rec]
        if confs:
            scores.update(segmentation_scores(np.sum(confs, axis=0)))
        depths = [rec['depth'] for rec in results if 'depth' in rec]
        if depths:
            scores.update(depth_scores(np.sum(depths, axis=0)))
        normals = [rec for rec in results if 'normal_sums' in rec]
        if normals:
            scores.update(normal_scores(np.sum([rec['normal_sums'] for rec in normals], axis=0),
                                        np.sum([rec['normal_hist'] for rec in normals], axis=0)))
        if self.delta_reference:
            scores['delta_mtl'] = delta_mtl(scores, self.delta_reference)
        return scores
