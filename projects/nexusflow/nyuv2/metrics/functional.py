"""Per-sample sufficient statistics of the NYUv2 metrics and the split-level figures computed from their sums.

Accumulated per pixel over the whole split, as MTPSL's ``ConfMatrix`` / ``DepthMeter`` / ``NormalsMeter`` (and
MTAN's Nov-2020 evaluation) do, not averaged per batch:

- segmentation: a ``13 x 13`` confusion matrix (rows ground truth, columns prediction) over pixels with a label in
  ``[0, 13)``; mIoU = mean over classes of ``TP / (TP + FP + FN)`` (classes that neither occur nor are predicted
  anywhere in the split are left out instead of giving NaN), pixel accuracy = ``trace / sum``;
- depth, over pixels with GT depth != 0: absolute error ``mean |p - g|`` (m), relative error ``mean |p - g| / g``,
  RMSE (m);
- normals, over pixels whose GT vector is not all-zero: the angle ``acos(clamp(<p, g>, -1, 1))`` in degrees; mean,
  median (from a histogram with ``NORMAL_BIN_DEG`` bins, linearly interpolated: exact to well under one bin), RMSE
  and the percentage of pixels under 11.25 / 22.5 / 30 degrees.
"""
from typing import Dict

import numpy as np
import torch
from torch import Tensor

NORMAL_THRESHOLDS = (11.25, 22.5, 30.0)
NORMAL_BIN_DEG = 0.05
NUM_NORMAL_BINS = int(round(180.0 / NORMAL_BIN_DEG))


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> np.ndarray:
    """Confusion counts of one sample.

    Args:
        pred (Tensor): int ``[H, W]`` (any leading shape) predicted classes in ``[0, num_classes)``.
        target (Tensor): int, same shape, GT classes; values outside ``[0, num_classes)`` (``-1``) are ignored.
        num_classes (int): ``C``.

    Returns:
        np.ndarray: int64 ``[C, C]``, ``[gt, pred]``.
    """
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    valid = (target >= 0) & (target < num_classes)
    codes = target[valid] * num_classes + pred[valid].clamp(0, num_classes - 1)
    return torch.bincount(codes, minlength=num_classes**2).reshape(num_classes, num_classes).cpu().numpy()


def segmentation_scores(conf: np.ndarray) -> Dict[str, float]:
    """``seg_miou`` and ``seg_pixel_acc`` in percent from a summed confusion matrix ``[C, C]``."""
    conf = conf.astype(np.float64)
    true_pos = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - true_pos
    present = union > 0
    miou = float(np.mean(true_pos[present] / union[present])) if present.any() else float('nan')
    total = conf.sum()
    return dict(seg_miou=100.0 * miou, seg_pixel_acc=100.0 * float(true_pos.sum() / total) if total else float('nan'))


def depth_sums(pred: Tensor, target: Tensor) -> np.ndarray:
    """``[sum |p - g|, sum |p - g| / g, sum (p - g)^2, count]`` float64 over the pixels with ``g != 0``.

    Args:
        pred (Tensor): ``[1, H, W]`` (any shape) predicted depth, metres.
        target (Tensor): same shape, GT depth, metres, 0 = invalid.
    """
    valid = target != 0
    diff = (pred[valid] - target[valid]).double()
    gt = target[valid].double()
    return np.array([diff.abs().sum().item(), (diff.abs() / gt).sum().item(), diff.pow(2).sum().item(),
                     float(valid.sum().item())])


def depth_scores(sums: np.ndarray) -> Dict[str, float]:
    """``depth_abs_err`` (m), ``depth_rel_err``, ``depth_rmse`` (m) from summed :func:`depth_sums`."""
    abs_sum, rel_sum, sq_sum, count = sums
    if count == 0:
        return dict(depth_abs_err=float('nan'), depth_rel_err=float('nan'), depth_rmse=float('nan'))
    return dict(depth_abs_err=float(abs_sum / count), depth_rel_err=float(rel_sum / count),
                depth_rmse=float(np.sqrt(sq_sum / count)))


def normal_angles(pred: Tensor, target: Tensor) -> Tensor:
    """Angles in degrees ``[M]`` (float64) between predicted and GT normals at the valid pixels.

    Args:
        pred (Tensor): ``[3, H, W]`` predicted unit normals.
        target (Tensor): ``[3, H, W]`` GT unit normals, all-zero = invalid.
    """
    valid = target.abs().sum(dim=0) > 0
    cos = (pred.double() * target.double()).sum(dim=0)[valid].clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))


def normal_sums(angles: Tensor) -> Dict[str, np.ndarray]:
    """Summable statistics of angles ``[M]`` (degrees): ``sums`` ``[sum, sum of squares, count, count under each
    threshold]`` float64 and ``hist`` int64 ``[NUM_NORMAL_BINS]`` over ``[0, 180]``."""
    sums = [angles.sum().item(), angles.pow(2).sum().item(), float(angles.numel())]
    sums += [float((angles < t).sum().item()) for t in NORMAL_THRESHOLDS]
    bins = (angles / NORMAL_BIN_DEG).long().clamp(0, NUM_NORMAL_BINS - 1)
    return dict(sums=np.array(sums), hist=torch.bincount(bins, minlength=NUM_NORMAL_BINS).cpu().numpy())


def histogram_median(hist: np.ndarray, bin_width: float = NORMAL_BIN_DEG) -> float:
    """Median of the values binned in ``hist`` (bins ``[k w, (k + 1) w)``), linear inside the median bin."""
    total = hist.sum()
    if total == 0:
        return float('nan')
    cum = np.cumsum(hist)
    k = int(np.searchsorted(cum, total / 2.0))
    before = cum[k - 1] if k else 0
    return float(bin_width * (k + (total / 2.0 - before) / hist[k]))


def normal_scores(sums: np.ndarray, hist: np.ndarray) -> Dict[str, float]:
    """``normal_mean``, ``normal_median``, ``normal_rmse`` (degrees) and ``normal_<t>`` (percent of pixels under
    ``t`` degrees) from summed :func:`normal_sums`."""
    angle_sum, sq_sum, count = sums[:3]
    if count == 0:
        return {key: float('nan') for key in ['normal_mean', 'normal_median', 'normal_rmse']
                + [f'normal_{t:g}' for t in NORMAL_THRESHOLDS]}
    scores = dict(normal_mean=float(angle_sum / count), normal_median=histogram_median(hist),
                  normal_rmse=float(np.sqrt(sq_sum / count)))
    scores.update({f'normal_{t:g}': float(100.0 * n / count) for t, n in zip(NORMAL_THRESHOLDS, sums[3:])})
    return scores


def delta_mtl(scores: Dict[str, float], reference: Dict[str, float]) -> float:
    """Multi-task performance ``Delta_MTL`` in percent (Maninis et al. 2019, the MTAN README and MTPSL):
    ``100 / T * sum_t s_t (M_t - R_t) / R_t`` with ``s_t = -1`` for metrics where lower is better (``depth_*``,
    ``normal_mean`` / ``normal_median`` / ``normal_rmse``) and ``+1`` otherwise, over the keys of ``reference``."""
    lower_better = ('depth_', 'normal_mean', 'normal_median', 'normal_rmse')
    missing = sorted(set(reference) - set(scores))
    if missing or not reference:
        raise KeyError(f'delta_mtl: reference metrics {missing or "(none)"} are not among the scores {sorted(scores)}')
    terms = [(-1.0 if key.startswith(lower_better) else 1.0) * (scores[key] - ref) / ref
             for key, ref in reference.items()]
    return 100.0 * float(np.mean(terms))
