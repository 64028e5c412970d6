"""NuScenesDetectionMetric (devkit DetectionEval, NDS / mAP) on the synthetic nuScenes val split."""
import mmengine
import numpy as np
import pytest
import torch

from mmdet3d.structures import LiDARInstance3DBoxes
from projects.nexusflow.evaluation import NuScenesDetectionMetric, sample_detection_boxes
from projects.nexusflow.evaluation.detection_metric import default_attributes

VERSION = 'v1.0-synth'


@pytest.fixture(scope='module')
def val(synthetic_root, synthetic_infos):
    """(data root, val pkl path, val data_list, class names)."""
    infos = mmengine.load(synthetic_infos['val'])
    return str(synthetic_root), synthetic_infos['val'], infos['data_list'], infos['metainfo']['classes']


def prediction(info, shift=0.0, with_ids=False):
    """The data sample a tracking model gives the metrics: the valid GT boxes of ``info``, x shifted by ``shift``."""
    instances = [inst for inst in info['instances'] if inst['bbox_3d_isvalid'] and inst['bbox_label_3d'] >= 0]
    boxes = np.array([inst['bbox_3d'] + inst['velocity'] for inst in instances], dtype=np.float64).reshape(-1, 9)
    boxes[:, 0] += shift
    pred = dict(bboxes_3d=LiDARInstance3DBoxes(torch.as_tensor(boxes), box_dim=9, origin=(0.5, 0.5, 0.5)),
                scores_3d=torch.linspace(0.9, 0.5, len(instances)),
                labels_3d=torch.tensor([inst['bbox_label_3d'] for inst in instances], dtype=torch.long))
    if with_ids:
        pred['instance_ids'] = torch.tensor([inst['instance_id'] for inst in instances], dtype=torch.long)
    return dict(token=info['token'], ego2global=info['ego2global'], lidar2ego=info['lidar2ego'],
                pred_instances_3d=pred)


def evaluate(val, tmp_path, samples, **kwargs):
    data_root, ann_file, _, classes = val
    metric = NuScenesDetectionMetric(data_root=data_root, ann_file=ann_file, version=VERSION,
                                     output_dir=str(tmp_path), **kwargs)
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def present_classes(data_list, classes):
    return sorted({classes[inst['bbox_label_3d']] for info in data_list for inst in info['instances']
                   if inst['bbox_3d_isvalid'] and inst['bbox_label_3d'] >= 0})


def test_gt_fed_back_gives_map_one_and_a_consistent_nds(val, tmp_path):
    _, _, data_list, classes = val
    metrics = evaluate(val, tmp_path, [prediction(info, with_ids=True) for info in data_list])
    present = present_classes(data_list, classes)
    assert len(present) >= 2
    for name in present:
        assert metrics[f'{name}_ap'] == pytest.approx(1.0)
    assert {key[:-3] for key in metrics if key.endswith('_ap')} <= set(present)
    # errors of the present classes are 0 (the devkit's class means count absent classes as error 1)
    label_errors = mmengine.load(tmp_path / 'metrics_summary.json')['label_tp_errors']
    for name in present:
        for err in ('trans_err', 'scale_err', 'orient_err', 'vel_err'):
            assert label_errors[name][err] == pytest.approx(0.0, abs=1e-3)
    # devkit: mAP averages over its 10 classes (absent ones count 0); NDS = (5 mAP + sum(1 - min(1, err))) / 10
    assert metrics['map'] == pytest.approx(len(present) / 10)
    errors = [metrics[name] for name in ('mate', 'mase', 'maoe', 'mave', 'maae')]
    assert metrics['nds'] == pytest.approx((5 * metrics['map'] + sum(1 - min(1.0, e) for e in errors)) / 10)
    assert (tmp_path / 'results_nusc_detection.json').is_file() and (tmp_path / 'metrics_summary.json').is_file()


def test_shifted_boxes_lower_map_and_raise_the_translation_error(val, tmp_path):
    _, _, data_list, classes = val
    # 1.5 m: matched at the 2 and 4 m thresholds only, translation error 1.5 m on the matches
    metrics = evaluate(val, tmp_path, [prediction(info, shift=1.5) for info in data_list])
    for name in present_classes(data_list, classes):
        assert metrics[f'{name}_ap'] < 0.6
    label_errors = mmengine.load(tmp_path / 'metrics_summary.json')['label_tp_errors']
    for name in present_classes(data_list, classes):
        assert label_errors[name]['trans_err'] == pytest.approx(1.5, abs=1e-3)


def test_empty_predictions_and_missing_samples(val, tmp_path):
    _, _, data_list, classes = val
    empty = [prediction(info, shift=0.0) for info in data_list]
    for sample in empty:
        pred = sample['pred_instances_3d']
        sample['pred_instances_3d'] = dict(bboxes_3d=pred['bboxes_3d'][:0], scores_3d=pred['scores_3d'][:0],
                                           labels_3d=pred['labels_3d'][:0])
    metrics = evaluate(val, tmp_path, empty)
    assert metrics['map'] == 0.0 and metrics['nds'] == 0.0 and metrics['mate'] == 1.0
    present = present_classes(data_list, classes)
    assert {key for key in metrics if key.endswith('_ap')} == {f'{name}_ap' for name in present}
    with pytest.raises(KeyError, match='lacks 1 of the'):
        evaluate(val, tmp_path, [prediction(info) for info in data_list[1:]])


def test_format_only_and_attributes(val, tmp_path):
    _, _, data_list, classes = val
    assert evaluate(val, tmp_path, [prediction(info) for info in data_list], format_only=True) == {}
    results = mmengine.load(tmp_path / 'results_nusc_detection.json')['results']
    assert set(results) == {info['token'] for info in data_list}
    assert default_attributes(['car', 'car', 'pedestrian', 'bus', 'barrier'], np.array([1.0, 0.0, 0.0, 0.0, 2.0])) \
        == ['vehicle.moving', 'vehicle.parked', 'pedestrian.standing', 'vehicle.stopped', '']
    boxes = sample_detection_boxes('t', np.zeros((2, 9)), np.ones(2), np.array([0, 0]), np.eye(4),
                                   ['car'], ['pedestrian'])
    assert boxes == []
    with pytest.raises(ValueError, match='NaN'):
        sample_detection_boxes('t', np.zeros((1, 9)), np.array([np.nan]), np.array([0]), np.eye(4), ['car'], ['car'])
