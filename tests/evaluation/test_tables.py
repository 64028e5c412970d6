"""The evaluation tables: layout of the metrics' flat dicts, and what a real evaluation logs (synthetic val split)."""
import mmengine
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger

from mmdet3d.registry import METRICS
from mmdet3d.structures import LiDARInstance3DBoxes
from projects.nexusflow.datasets import NuScenesTrackMapDataset
from projects.nexusflow.evaluation.tables import MAP_COLUMNS, TRACKING_COLUMNS, class_table, scope_table


def test_scope_table_one_row_per_scope_in_order():
    metrics = {'amota': 0.5, 'tp': 12.0, 'car_amota': 0.25, 'singapore/amota': 0.75, 'boston/amota': 0.125,
               'boston/tp': 3.0}
    lines = scope_table('tracking', metrics, TRACKING_COLUMNS).splitlines()
    assert lines[0].startswith('+tracking') and lines[1].split('|')[1:4] == [' scope     ', ' AMOTA ', ' AMOTP ']
    rows = [[cell.strip() for cell in line.split('|')[1:-1]] for line in lines[3:-1]]
    assert [row[0] for row in rows] == ['overall', 'boston', 'singapore']
    assert rows[0][1] == '0.500' and rows[0][2] == '-' and rows[0][8] == '12'
    assert rows[1][1] == '0.125' and rows[1][8] == '3' and rows[2][8] == '-'
    assert scope_table('none', {'other': 1.0}, TRACKING_COLUMNS) == ''


def test_class_table_and_protocol_scopes():
    metrics = {'car_amota': 0.5, 'bus_amota': 0.25, 'boston/car_amota': 1.0}
    rows = [[c.strip() for c in line.split('|')[1:-1]] for line in class_table('t', metrics, '_amota').splitlines()]
    assert rows[1] == ['class', 'overall', 'boston']
    assert rows[3:5] == [['bus', '0.250', '-'], ['car', '0.500', '1.000']]
    assert class_table('t', {'amota': 1.0}, '_amota') == ''
    scoped = {'uniad/lanes_iou': 12.5, 'uniad/boston/lanes_iou': float('nan')}
    rows = [[c.strip() for c in line.split('|')[1:-1]] for line in scope_table('m', scoped, MAP_COLUMNS).splitlines()]
    assert [row[:2] for row in rows[3:5]] == [['uniad', '12.50'], ['uniad/boston', 'nan']]


def gt_prediction(info):
    """A perfect tracker's data sample for one val info (boxes of the valid GT instances, their ids)."""
    instances = [inst for inst in info['instances'] if inst['bbox_3d_isvalid'] and inst['bbox_label_3d'] >= 0]
    boxes = np.array([inst['bbox_3d'] + inst['velocity'] for inst in instances], dtype=np.float64).reshape(-1, 9)
    return dict(token=info['token'], ego2global=info['ego2global'], lidar2ego=info['lidar2ego'],
                pred_instances_3d=dict(
                    bboxes_3d=LiDARInstance3DBoxes(torch.as_tensor(boxes), box_dim=9, origin=(0.5, 0.5, 0.5)),
                    scores_3d=torch.linspace(0.9, 0.5, len(instances)),
                    labels_3d=torch.tensor([inst['bbox_label_3d'] for inst in instances], dtype=torch.long),
                    instance_ids=torch.tensor([inst['instance_id'] for inst in instances], dtype=torch.long)))


@pytest.fixture
def log_file(tmp_path):
    """A current MMLogger writing to a file (as the runner's); removed afterwards."""
    path = tmp_path / 'eval.log'
    name = f'test-tables-{id(path)}'
    logger = MMLogger.get_instance(name, log_file=str(path))
    yield path
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
    MMLogger._instance_dict.pop(name)


def test_metrics_take_the_dataset_root_and_log_progress_and_tables(synthetic_root, synthetic_infos, tmp_path,
                                                                   log_file):
    """Metrics built without data_root / ann_file / version evaluate the dataset they are given (dataset_meta)."""
    dataset = NuScenesTrackMapDataset(data_root=str(synthetic_root), ann_file='nuscenes_infos_temporal_val.pkl',
                                      test_mode=True)
    evaluator = Evaluator([
        METRICS.build(dict(type='NexusFlowNuScenesTrackingMetric', per_city=True, output_dir=str(tmp_path / 'track'))),
        METRICS.build(dict(type='NexusFlowNuScenesDetectionMetric', output_dir=str(tmp_path / 'det')))])
    evaluator.dataset_meta = dataset.metainfo
    infos = mmengine.load(synthetic_infos['val'])['data_list']
    evaluator.process([gt_prediction(info) for info in infos])
    metrics = evaluator.evaluate(len(infos))
    assert metrics['track/amota'] == 1.0 and metrics['track/boston/amota'] == 1.0
    assert metrics['det/car_ap'] == pytest.approx(1.0)
    text = log_file.read_text()
    assert f'loading nuScenes v1.0-synth from {synthetic_root}' in text
    for step in ("[1/3]: devkit TrackingEval on eval_set 'synth_val' (12 samples, 2 scenes",
                 "[2/3]: the boston samples of 'synth_val' done in", "[3/3]: devkit TrackingEval on the singapore"):
        assert step in text
    assert "detection evaluation: devkit DetectionEval on eval_set 'synth_val' (12 samples" in text
    table = text[text.index('+tracking (v1.0-synth synth_val)'):text.index('detection evaluation: loading')]
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
            for line in table.splitlines() if line.startswith('| ')}
    assert rows['overall'][0] == rows['boston'][0] == rows['singapore'][0] == '1.000'
    assert int(rows['boston'][7]) + int(rows['singapore'][7]) == int(rows['overall'][7]) == metrics['track/tp']
    assert rows['car'] == ['1.000', '1.000', '1.000']  # AMOTA per class: overall, boston, singapore
    assert '+detection (v1.0-synth synth_val)' in text and '+detection AP per class' in text
    assert text.index('+tracking AMOTA per class') < text.index('+detection (v1.0-synth')


def test_a_metric_without_root_and_dataset_says_what_to_do(synthetic_infos, tmp_path):
    metric = METRICS.build(dict(type='NexusFlowNuScenesTrackingMetric', version='v1.0-synth', output_dir=str(tmp_path)))
    metric.dataset_meta = dict(classes=['car'])
    with pytest.raises(ValueError, match="data_root is not set and dataset_meta has no 'data_root'; pass "
                                         "data_root= to the metric, or .* NuScenesTrackMapDataset"):
        metric.compute_metrics([])


def test_map_metric_logs_its_table(log_file):
    gt = np.zeros((2, 4, 4), np.uint8)
    gt[0, 0], gt[1, :, :2] = 1, 1  # divider row 0, drivable left half
    pred = np.zeros((4, 4, 4), bool)
    pred[0, 0, :2], pred[3, :, :2] = True, True  # half of the divider, all of the drivable area
    metric = METRICS.build(dict(type='NexusFlowMapIoUMetric', per_city=True))
    metric.process({}, [dict(token=token, location=location, pred_map=dict(masks=torch.as_tensor(pred)),
                             gt_map_instances=dict(labels=torch.tensor([0, 3]), masks=torch.as_tensor(gt)))
                        for token, location in (('a', 'boston-seaport'), ('b', 'singapore-onenorth'))])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['lanes_iou'] == metrics['boston/divider_iou'] == 50.0
    lines = [line for line in log_file.read_text().splitlines() if line.startswith('| ')]
    rows = [[cell.strip() for cell in line.split('|')[1:-1]] for line in lines]
    assert rows == [['scope', 'lanes', 'divider', 'crossing', 'boundary', 'drivable'],
                    ['overall', '50.00', '50.00', 'nan', 'nan', '100.00'],
                    ['boston', '50.00', '50.00', 'nan', 'nan', '100.00'],
                    ['singapore', '50.00', '50.00', 'nan', 'nan', '100.00']]
