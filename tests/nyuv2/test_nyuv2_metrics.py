"""NYUv2 metrics on hand-made inputs with known answers."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement, PixelData

from mmdet3d.registry import METRICS
from projects.nexusflow.nyuv2.metrics import (confusion_matrix, delta_mtl, depth_scores, depth_sums,
                                              histogram_median, normal_angles, normal_scores, normal_sums,
                                              segmentation_scores)

# 3 classes; -1 ignored. GT rows x pred cols: (0,0) 1, (0,1) 1, (1,1) 2, (2,2) 1
SEG_TARGET = torch.tensor([[0, 0, 1], [1, 2, -1]])
SEG_PRED = torch.tensor([[0, 1, 1], [1, 2, 0]])
# IoU_0 = 1 / (2 + 1 - 1), IoU_1 = 2 / (2 + 3 - 2), IoU_2 = 1 / 1; accuracy 4 / 5
EXPECTED_MIOU = 100 * (0.5 + 2 / 3 + 1.0) / 3
ANGLES_DEG = (0.0, 10.0, 20.0, 45.0, 90.0)


def normals_at_angles(angles):
    """Unit vectors at the given angles from +z, as [3, 1, N], plus one invalid (all-zero GT) pixel at the end."""
    rad = torch.deg2rad(torch.tensor(angles + (33.0, ), dtype=torch.float64))
    pred = torch.stack([torch.sin(rad), torch.zeros_like(rad), torch.cos(rad)])[:, None]
    gt = torch.zeros_like(pred)
    gt[2, 0, :-1] = 1.0
    return pred, gt


def test_confusion_matrix_miou_and_pixel_accuracy():
    conf = confusion_matrix(SEG_PRED, SEG_TARGET, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    scores = segmentation_scores(conf)
    assert scores['seg_miou'] == pytest.approx(EXPECTED_MIOU)
    assert scores['seg_pixel_acc'] == pytest.approx(80.0)
    # a class that never occurs and is never predicted is left out of the mean instead of giving NaN
    assert segmentation_scores(confusion_matrix(SEG_PRED, SEG_TARGET, 4))['seg_miou'] == pytest.approx(EXPECTED_MIOU)


def test_depth_errors():
    pred, gt = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]]), torch.tensor([[[2.0, 0.0, 1.0, 4.0]]])
    sums = depth_sums(pred, gt)
    assert sums.tolist() == pytest.approx([3.0, 2.5, 5.0, 3.0])
    scores = depth_scores(sums)
    assert scores['depth_abs_err'] == pytest.approx(1.0)
    assert scores['depth_rel_err'] == pytest.approx(2.5 / 3)
    assert scores['depth_rmse'] == pytest.approx(math.sqrt(5 / 3))


def test_normal_angles_and_thresholds():
    pred, gt = normals_at_angles(ANGLES_DEG)
    angles = normal_angles(pred, gt)
    assert angles.numpy() == pytest.approx(np.array(ANGLES_DEG), abs=1e-6)
    stats = normal_sums(angles)
    scores = normal_scores(stats['sums'], stats['hist'])
    assert scores['normal_mean'] == pytest.approx(33.0)
    assert scores['normal_median'] == pytest.approx(20.0, abs=0.05)
    assert scores['normal_rmse'] == pytest.approx(math.sqrt(np.mean(np.square(ANGLES_DEG))))
    assert (scores['normal_11.25'], scores['normal_22.5'], scores['normal_30']) == pytest.approx((40.0, 60.0, 60.0))


def test_histogram_median_matches_numpy_on_many_values():
    values = torch.rand(10001, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 60.0
    stats = normal_sums(values)
    assert histogram_median(stats['hist']) == pytest.approx(float(np.median(values.numpy())), abs=0.05)


def test_delta_mtl_signs():
    scores = dict(seg_miou=40.0, depth_abs_err=0.5, normal_mean=30.0)
    reference = dict(seg_miou=36.0, depth_abs_err=0.6, normal_mean=25.0)
    expected = 100 * (4 / 36 + 0.1 / 0.6 - 5 / 25) / 3
    assert delta_mtl(scores, reference) == pytest.approx(expected)
    with pytest.raises(KeyError, match='normal_median'):
        delta_mtl(scores, dict(normal_median=20.0))


def sample(seg_pred, seg_gt, depth_pred, depth_gt, normal_pred, normal_gt, **flags):
    data = BaseDataElement(metainfo=flags)
    data.pred_sem_seg, data.gt_sem_seg = PixelData(data=seg_pred[None]), PixelData(data=seg_gt[None])
    data.pred_depth, data.gt_depth = PixelData(data=depth_pred), PixelData(data=depth_gt)
    data.pred_normal, data.gt_normal = PixelData(data=normal_pred.float()), PixelData(data=normal_gt.float())
    return data


def test_metric_accumulates_over_the_split_and_honours_flags():
    """Two samples split the hand-made pixels: the split-level figures equal the ones of all pixels together; a
    third sample with every flag False is ignored."""
    normal_pred, normal_gt = normals_at_angles(ANGLES_DEG)
    first = sample(SEG_PRED[:1], SEG_TARGET[:1], torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 0.0]]]),
                   normal_pred[..., :2], normal_gt[..., :2])
    second = sample(SEG_PRED[1:], SEG_TARGET[1:], torch.tensor([[[3.0, 4.0]]]), torch.tensor([[[1.0, 4.0]]]),
                    normal_pred[..., 2:], normal_gt[..., 2:])
    ignored = sample(torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.long),
                     torch.full((1, 1, 2), 9.0), torch.ones(1, 1, 2), -normal_gt[..., :2], normal_gt[..., :2],
                     has_seg=False, has_depth=False, has_normal=False)
    metric = METRICS.build(dict(type='NexusFlowNYUv2Metric', num_classes=3,
                                delta_reference=dict(seg_miou=50.0, depth_abs_err=2.0, normal_mean=30.0)))
    metric.process({}, [first.to_dict(), second, ignored])
    scores = metric.evaluate(3)
    assert scores['nyuv2/seg_miou'] == pytest.approx(EXPECTED_MIOU)
    assert scores['nyuv2/seg_pixel_acc'] == pytest.approx(80.0)
    assert scores['nyuv2/depth_abs_err'] == pytest.approx(1.0)
    assert scores['nyuv2/depth_rel_err'] == pytest.approx(2.5 / 3)
    assert scores['nyuv2/normal_mean'] == pytest.approx(33.0)
    assert scores['nyuv2/normal_median'] == pytest.approx(20.0, abs=0.05)
    expected_delta = 100 * ((EXPECTED_MIOU - 50) / 50 + (2.0 - 1.0) / 2.0 - (33.0 - 30.0) / 30.0) / 3
    assert scores['nyuv2/delta_mtl'] == pytest.approx(expected_delta)


def test_metric_reports_only_predicted_tasks_and_names_missing_gt():
    metric = METRICS.build(dict(type='NexusFlowNYUv2Metric'))
    only_depth = BaseDataElement()
    only_depth.pred_depth, only_depth.gt_depth = PixelData(data=torch.ones(1, 2, 2)), PixelData(
        data=torch.full((1, 2, 2), 2.0))
    metric.process({}, [only_depth])
    assert sorted(metric.evaluate(1)) == ['nyuv2/depth_abs_err', 'nyuv2/depth_rel_err', 'nyuv2/depth_rmse']
    no_gt = BaseDataElement()
    no_gt.pred_depth = PixelData(data=torch.ones(1, 2, 2))
    with pytest.raises(KeyError, match="gt_depth"):
        metric.process({}, [no_gt])
