"""MapIoUMetric: split-level summed intersections / unions, lanes = union of the thing classes, per city."""
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

from mmdet3d.registry import METRICS
from mmdet3d.structures import Det3DDataSample
from projects.nexusflow.evaluation import MapIoUMetric, map_iou_counts, semantic_gt_masks


def sample(token, gt_labels, gt_masks, pred, location='boston-seaport', **meta):
    return dict(token=token, location=location, gt_map_instances=dict(labels=torch.as_tensor(gt_labels),
                                                                      masks=torch.as_tensor(gt_masks)),
                pred_map=dict(masks=torch.as_tensor(pred)), **meta)


def hand_made_case():
    """4x4 canvas: GT divider row 0, crossing column 3, drivable left half, no boundary."""
    gt = np.zeros((3, 4, 4), np.uint8)
    gt[0, 0], gt[1, :, 3], gt[2, :, :2] = 1, 1, 1
    labels = [0, 1, 3]
    pred = np.zeros((4, 4, 4), bool)
    pred[0, 0, :2] = True  # half of the divider
    pred[3, :2] = True  # drivable: top half against the GT left half
    return labels, gt, pred


def gt_as_pred(labels, gt):
    return semantic_gt_masks(torch.as_tensor(labels), torch.as_tensor(gt)).numpy()


def test_semantic_gt_union_of_instances():
    masks = np.zeros((3, 2, 3), np.uint8)
    masks[0, 0, 0], masks[1, 1, 2], masks[2, 0, 1] = 1, 1, 1
    sem = semantic_gt_masks(torch.tensor([0, 0, 3]), torch.as_tensor(masks))
    assert sem.dtype == torch.bool and sem.shape == (4, 2, 3)
    assert sem[0].nonzero().tolist() == [[0, 0], [1, 2]] and sem[3].nonzero().tolist() == [[0, 1]]
    assert not sem[1].any() and not sem[2].any()


def test_hand_made_counts_are_exact():
    labels, gt, pred = hand_made_case()
    counts = map_iou_counts(torch.as_tensor(pred), semantic_gt_masks(torch.as_tensor(labels), torch.as_tensor(gt)))
    # divider, crossing, boundary, drivable, lanes (row 0 U column 3 = 7 pixels)
    assert counts['intersection'].tolist() == [2, 0, 0, 4, 2]
    assert counts['union'].tolist() == [4, 4, 0, 12, 7]


def test_gt_fed_back_gives_100_everywhere():
    labels, gt, _ = hand_made_case()
    gt_full = np.concatenate([gt, np.zeros((1, 4, 4), np.uint8)])
    gt_full[3, 3] = 1  # a boundary row too
    labels_full = labels + [2]
    metric = MapIoUMetric()
    metric.process({}, [sample('a', labels_full, gt_full, gt_as_pred(labels_full, gt_full)),
                        sample('b', labels_full, gt_full, gt_as_pred(labels_full, gt_full), location='singapore-x')])
    result = metric.compute_metrics(metric.results)
    assert set(result) == {f'{p}{n}_iou' for p in ('', 'boston/', 'singapore/')
                           for n in ('divider', 'crossing', 'boundary', 'drivable', 'lanes')}
    assert all(value == 100.0 for value in result.values())


def test_split_level_sums_not_frame_means_and_per_city():
    labels, gt, pred = hand_made_case()
    metric = MapIoUMetric()
    metric.process({}, [sample('a', labels, gt, pred), sample('b', labels, gt, gt_as_pred(labels, gt),
                                                              location='singapore-onenorth')])
    result = metric.compute_metrics(metric.results)
    assert result['boston/drivable_iou'] == pytest.approx(100 * 4 / 12)
    assert result['boston/divider_iou'] == 50.0 and result['boston/crossing_iou'] == 0.0
    assert result['boston/lanes_iou'] == pytest.approx(100 * 2 / 7)
    assert math.isnan(result['boston/boundary_iou'])  # empty union: undefined, not 0 or 100
    assert result['singapore/drivable_iou'] == 100.0
    assert result['drivable_iou'] == pytest.approx(100 * (4 + 8) / (12 + 8))  # 60, not the frame mean 66.7
    assert result['lanes_iou'] == pytest.approx(100 * (2 + 7) / (7 + 7))
    assert result['crossing_iou'] == pytest.approx(100 * 4 / 8)


def test_unlabelled_and_duplicate_samples_are_left_out():
    labels, gt, pred = hand_made_case()
    metric = MapIoUMetric(per_city=False)
    unlabelled = sample('b', labels, gt, pred, has_map_gt=False)
    metric.process({}, [sample('a', labels, gt, gt_as_pred(labels, gt)), unlabelled])
    metric.process({}, [sample('a', labels, gt, pred)])  # repeated token (padding sampler): first one kept
    result = metric.compute_metrics(metric.results)
    assert result['drivable_iou'] == 100.0 and result['divider_iou'] == 100.0
    assert 'boston/drivable_iou' not in result


def test_through_mmengine_evaluator_with_data_samples():
    labels, gt, pred = hand_made_case()
    data_sample = Det3DDataSample(metainfo=dict(token='a', location='boston-seaport'))
    data_sample.gt_map_instances = InstanceData(labels=torch.as_tensor(labels), masks=torch.as_tensor(gt))
    data_sample.pred_map = dict(masks=torch.as_tensor(pred))
    evaluator = Evaluator(METRICS.build(dict(type='NexusFlowMapIoUMetric')))
    evaluator.process([data_sample])
    metrics = evaluator.evaluate(1)
    assert metrics['map/drivable_iou'] == pytest.approx(100 / 3) and metrics['map/divider_iou'] == 50.0


def test_clear_errors():
    labels, gt, pred = hand_made_case()
    metric = MapIoUMetric()
    with pytest.raises(ValueError, match=r'must be \[4, H, W\] on the GT canvas \(4, 4, 4\), got \(4, 2, 2\)'):
        metric.process({}, [sample('a', labels, gt, pred[:, :2, :2])])
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 4\)'):
        metric.process({}, [sample('a', [0, 1, 7], gt, pred)])
    bad = sample('a', labels, gt, pred)
    del bad['pred_map']
    with pytest.raises(KeyError, match="lacks 'pred_map'"):
        metric.process({}, [bad])
    bad = sample('a', labels, gt, pred)
    del bad['location']
    with pytest.raises(KeyError, match="lacks 'location'"):
        metric.process({}, [bad])
    MapIoUMetric(per_city=False).process({}, [bad])  # location only needed per city


def test_gt_protocol_scopes_the_metric_names():
    labels, gt, pred = hand_made_case()
    metric = MapIoUMetric(per_city=True)
    metric.process({}, [sample('a', labels, gt, pred, map_gt_protocol='uniad')])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['uniad/divider_iou'] == pytest.approx(50.0) and 'uniad/boston/divider_iou' in metrics
    assert not any(key.startswith(('divider', 'lanes')) for key in metrics)
    metric = MapIoUMetric(per_city=False)
    metric.process({}, [sample('a', labels, gt, pred, map_gt_protocol='lidar')])
    assert metric.compute_metrics(metric.results)['divider_iou'] == pytest.approx(50.0)
    metric.process({}, [sample('b', labels, gt, pred, map_gt_protocol='uniad')])
    with pytest.raises(ValueError, match='several protocols'):
        metric.compute_metrics(metric.results)
