"""NuScenesTrackingMetric on the synthetic nuScenes val split: GT fed back, perturbations, world sizes, errors."""
import json
import logging
import os.path as osp
from itertools import chain, zip_longest

import mmengine
import numpy as np
import pytest
import torch
from nuscenes import NuScenes
from pyquaternion import Quaternion

from mmdet3d.structures import LiDARInstance3DBoxes
from projects.nexusflow.datasets.samplers import SceneAwareSampler
from projects.nexusflow.evaluation import tracking_eval
from projects.nexusflow.evaluation import (NuScenesTrackingMetric, evaluate_tracking_results, lidar_boxes_to_global,
                                           resolve_eval_set)

VERSION = 'v1.0-synth'


@pytest.fixture(scope='module')
def val(synthetic_root, synthetic_infos):
    """(data root, val pkl path, val data_list, class names)."""
    infos = mmengine.load(synthetic_infos['val'])
    return str(synthetic_root), synthetic_infos['val'], infos['data_list'], infos['metainfo']['classes']


def gt_tracks(info):
    """The valid GT instances of one info that a perfect tracker would output."""
    return [inst for inst in info['instances'] if inst['bbox_3d_isvalid'] and inst['bbox_label_3d'] >= 0]


def prediction(info, instances, track_ids=None, score_levels=1):
    """The data-sample dict a tracking model gives the metric: LiDAR-frame bottom-centre boxes with velocity.

    Track scores take ``score_levels`` distinct values; the devkit evaluates every distinct recall threshold with
    motmetrics (~0.1 s each), so the tests that check counts use one level.
    """
    boxes = np.array([inst['bbox_3d'] + inst['velocity'] for inst in instances], dtype=np.float64).reshape(-1, 9)
    ids = [inst['instance_id'] for inst in instances] if track_ids is None else track_ids
    return dict(token=info['token'], scene_token=info['scene_token'], location=info['location'],
                ego2global=info['ego2global'], lidar2ego=info['lidar2ego'],
                pred_instances_3d=dict(
                    bboxes_3d=LiDARInstance3DBoxes(torch.as_tensor(boxes), box_dim=9, origin=(0.5, 0.5, 0.5)),
                    scores_3d=torch.tensor([0.5 + 0.1 * (inst['instance_id'] % score_levels)
                                            for inst in instances], dtype=torch.float32),
                    labels_3d=torch.tensor([inst['bbox_label_3d'] for inst in instances], dtype=torch.long),
                    instance_ids=torch.as_tensor(ids, dtype=torch.long)))


def make_metric(val, tmp_path, **kwargs):
    data_root, ann_file, _, classes = val
    metric = NuScenesTrackingMetric(data_root=data_root, ann_file=ann_file, version=VERSION,
                                    output_dir=str(tmp_path), **kwargs)
    metric.dataset_meta = dict(classes=classes)
    return metric


def evaluate(val, tmp_path, samples, **kwargs):
    metric = make_metric(val, tmp_path, **kwargs)
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_lidar_boxes_to_global_matches_devkit_annotations(val):
    data_root, _, data_list, _ = val
    nusc = NuScenes(VERSION, data_root, verbose=False)
    checked = 0
    for info in data_list[:4]:
        lidar2global = np.asarray(info['ego2global']) @ np.asarray(info['lidar2ego'])
        anns = {nusc.get('sample_annotation', t)['instance_token']: nusc.get('sample_annotation', t)
                for t in nusc.get('sample', info['token'])['anns']}
        boxes = LiDARInstance3DBoxes(torch.tensor([i['bbox_3d'] + i['velocity'] for i in info['instances']]),
                                     box_dim=9, origin=(0.5, 0.5, 0.5)).tensor.double().numpy()
        glob = lidar_boxes_to_global(boxes, lidar2global)
        for k, inst in enumerate(info['instances']):
            ann = anns[inst['instance_token']]
            assert glob['translation'][k] == pytest.approx(ann['translation'], abs=1e-4)
            assert glob['size'][k] == pytest.approx(ann['size'], abs=1e-5)
            assert Quaternion.absolute_distance(Quaternion(glob['rotation'][k]), Quaternion(ann['rotation'])) < 1e-4
            velocity = np.nan_to_num(nusc.box_velocity(ann['token'])[:2])
            assert glob['velocity'][k] == pytest.approx(velocity, abs=1e-4)
            checked += 1
    assert checked > 10


def test_gt_fed_back_is_perfect_overall_and_per_city(val, tmp_path):
    _, _, data_list, _ = val
    metrics = evaluate(val, tmp_path, [prediction(info, gt_tracks(info), score_levels=3) for info in data_list])
    assert metrics['tp'] > 20  # matched boxes, summed over classes
    assert (metrics['amota'], metrics['recall'], metrics['mota']) == (1.0, 1.0, 1.0)
    assert (metrics['ids'], metrics['fp'], metrics['fn'], metrics['frag']) == (0.0, 0.0, 0.0, 0.0)
    assert metrics['amotp'] == pytest.approx(0.0, abs=1e-4) and metrics['car_amota'] == 1.0
    for city in ('boston', 'singapore'):
        assert metrics[f'{city}/amota'] == 1.0 and metrics[f'{city}/ids'] == 0.0
    assert metrics['boston/tp'] + metrics['singapore/tp'] == metrics['tp']
    for path in ('results_nusc_tracking.json', 'metrics_summary.json', 'boston/metrics_summary.json',
                 'singapore/metrics_details.json'):
        assert osp.isfile(tmp_path / path)
    submission = json.loads((tmp_path / 'results_nusc_tracking.json').read_text())
    assert set(submission['results']) == {info['token'] for info in data_list}
    box = next(b for boxes in submission['results'].values() for b in boxes)
    assert isinstance(box['tracking_id'], str) and isinstance(box['tracking_score'], float)
    assert submission['meta']['use_camera'] is True


def longest_track(data_list):
    """(instance_id, [frame positions]) of the GT track seen in most frames of one scene."""
    frames = {}
    for pos, info in enumerate(data_list):
        for inst in gt_tracks(info):
            frames.setdefault((info['scene_token'], inst['instance_id']), []).append(pos)
    (_, instance_id), positions = max(sorted(frames.items()), key=lambda item: len(item[1]))
    return instance_id, positions


def test_dropped_track_end_and_id_switch_give_exact_counts(val, tmp_path):
    _, _, data_list, _ = val
    instance_id, positions = longest_track(data_list)
    assert len(positions) >= 4
    dropped = set(positions[-2:])  # the last two frames of the track: no interpolation can fill them
    samples = []
    for pos, info in enumerate(data_list):
        kept = [inst for inst in gt_tracks(info) if not (pos in dropped and inst['instance_id'] == instance_id)]
        samples.append(prediction(info, kept))
    metrics = evaluate(val, tmp_path, samples, per_city=False)
    assert (metrics['fn'], metrics['fp'], metrics['ids']) == (2.0, 0.0, 0.0)
    assert metrics['recall'] < 1.0 and 'boston/amota' not in metrics

    switch = positions[len(positions) // 2]  # a new track id from the middle of the track on
    samples = [prediction(info, gt_tracks(info),
                          [inst['instance_id'] + (10 ** 6 if pos >= switch and inst['instance_id'] == instance_id
                                                  else 0) for inst in gt_tracks(info)])
               for pos, info in enumerate(data_list)]
    metrics = evaluate(val, tmp_path, samples, per_city=False)
    assert (metrics['ids'], metrics['fn'], metrics['fp']) == (1.0, 0.0, 0.0)
    assert metrics['mota'] < 1.0


class ValDataset:
    """The val infos as a test dataset for the sampler (``get_data_info`` with scene_token / frame_idx)."""

    def __init__(self, data_list):
        self.data_list = data_list

    def __len__(self):
        return len(self.data_list)

    def get_data_info(self, index):
        return dict(self.data_list[index])


class RestartingTracker:
    """Stand-in tracker with temporal state. Ids count up per scene from an offset that depends on the frame where
    the tracker (re)started: a start in the middle of a scene hands out fresh ids, as a tracker that lost its state
    does, so every object tracked before the cut gets an id switch."""

    def __init__(self):
        self.scene, self.ids, self.offset = None, {}, 0

    def __call__(self, info):
        if info['scene_token'] != self.scene:
            self.scene, self.ids, self.offset = info['scene_token'], {}, 1000 * info['frame_idx']
        instances = gt_tracks(info)
        track_ids = [self.ids.setdefault(inst['instance_id'], self.offset + len(self.ids)) for inst in instances]
        return prediction(info, instances, track_ids)


def evaluate_in_rank_layout(val, out_dir, index_lists):
    """Each rank runs its indices with its own tracker; results gathered as mmengine's collect_results does."""
    dataset = ValDataset(val[2])
    parts = []
    for indices in index_lists:
        metric, tracker = make_metric(val, out_dir), RestartingTracker()
        metric.process({}, [tracker(dataset.get_data_info(i)) for i in indices])
        parts.append(metric.results)
    gathered = [r for r in chain.from_iterable(zip_longest(*parts)) if r is not None][:len(dataset)]
    metric = make_metric(val, out_dir, per_city=False)
    return metric.compute_metrics(gathered), (out_dir / 'results_nusc_tracking.json').read_bytes()


def test_metrics_do_not_depend_on_the_number_of_processes(val, tmp_path):
    dataset = ValDataset(val[2])
    results = {}
    for world_size in (1, 2, 3):
        layout = [list(SceneAwareSampler(dataset, rank=r, world_size=world_size)) for r in range(world_size)]
        results[world_size] = evaluate_in_rank_layout(val, tmp_path / f'ws{world_size}', layout)
    metrics, submission = results[1]
    assert metrics['amota'] == 1.0 and metrics['ids'] == 0.0
    assert results[2] == (metrics, submission) and results[3] == (metrics, submission)  # byte-identical json
    chunks = [c.tolist() for c in np.array_split(np.arange(len(dataset)), 3)]  # UniAD: contiguous chunks
    assert evaluate_in_rank_layout(val, tmp_path / 'chunks', chunks)[0]['ids'] > 0


def test_empty_predictions_give_worst_values_with_a_warning(val, tmp_path, monkeypatch):
    _, _, data_list, _ = val
    logged = []
    monkeypatch.setattr(tracking_eval, 'print_log',
                        lambda msg, **kwargs: logged.append((msg, kwargs.get('level', logging.INFO))))
    metrics = evaluate(val, tmp_path, [prediction(info, []) for info in data_list], per_city=False)
    logged = [(msg, level) for msg, level in logged if level == logging.WARNING]
    assert (metrics['amota'], metrics['recall'], metrics['tp']) == (0.0, 0.0, 0.0)
    classes_with_gt = sum(key.endswith('_amota') for key in metrics)
    assert metrics['fn'] == metrics['gt'] * classes_with_gt > 0  # fn is summed, gt a class mean (devkit)
    assert len(logged) == 1 and 'holds no predicted box' in logged[0][0] and logged[0][1] == logging.WARNING


def test_clear_errors(val, tmp_path, monkeypatch):
    data_root, ann_file, data_list, _ = val
    samples = [prediction(info, gt_tracks(info)) for info in data_list]
    with pytest.raises(KeyError, match=r'lacks 1 of the \d+ sample tokens'):
        evaluate(val, tmp_path, samples[1:])
    stranger = dict(samples[0], token='not-a-sample-token')
    with pytest.raises(KeyError, match="1 sample tokens that are not in eval_set 'synth_val'"):
        evaluate(val, tmp_path, samples + [stranger])
    metric = make_metric(val, tmp_path)
    metric.dataset_meta = None
    metric.process({}, samples)
    with pytest.raises(KeyError, match='dataset_meta'):
        metric.compute_metrics(metric.results)
    bad = prediction(data_list[0], gt_tracks(data_list[0]))
    bad['pred_instances_3d']['bboxes_3d'] = torch.zeros(2, 7)
    with pytest.raises(ValueError, match=r'must be \[M, 9\]'):
        make_metric(val, tmp_path).process({}, [bad])
    del bad['pred_instances_3d']['instance_ids']
    with pytest.raises(KeyError, match='instance_ids'):
        make_metric(val, tmp_path).process({}, [bad])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        evaluate_tracking_results(str(tmp_path / 'none.json'), data_root, VERSION, 'synth_val', str(tmp_path))

    from nuscenes.eval.tracking import algo

    def failing_accumulate(self):
        raise AssertionError()

    monkeypatch.setattr(algo.TrackingEvaluation, 'accumulate', failing_accumulate)
    with pytest.raises(RuntimeError, match='unachieved_thresholds.*nuscenes-devkit==1.2.0'):
        evaluate(val, tmp_path, samples, per_city=False)


def test_eval_set_resolution(val, tmp_path):
    _, ann_file, _, _ = val
    assert resolve_eval_set(VERSION, None, ann_file) == 'synth_val'
    assert resolve_eval_set(VERSION, 'synth_train', ann_file) == 'synth_train'
    assert resolve_eval_set('v1.0-trainval') == 'val' and resolve_eval_set('v1.0-mini') == 'mini_val'
    with pytest.raises(ValueError, match="written for v1.0-synth, but the metric evaluates v1.0-mini"):
        resolve_eval_set('v1.0-mini', None, ann_file)
    with pytest.raises(ValueError, match='custom version'):
        resolve_eval_set(VERSION)
    with pytest.raises(FileNotFoundError, match='tools/create_data.py'):
        resolve_eval_set(VERSION, None, str(tmp_path / 'missing.pkl'))


def test_format_only_and_standalone_eval_track_tool(val, tmp_path):
    import importlib.util
    from pathlib import Path
    data_root, _, data_list, _ = val
    metrics = evaluate(val, tmp_path, [prediction(info, gt_tracks(info)) for info in data_list], format_only=True)
    assert metrics == {}
    result_json = tmp_path / 'results_nusc_tracking.json'
    assert result_json.is_file() and not (tmp_path / 'metrics_summary.json').exists()
    spec = importlib.util.spec_from_file_location(
        'eval_track', Path(__file__).resolve().parents[2] / 'tools' / 'eval_track.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    metrics = tool.main([str(result_json), '--data-root', data_root, '--version', VERSION, '--eval-set',
                         'synth_val', '--no-per-city'])
    assert metrics['amota'] == 1.0 and (tmp_path / 'eval_synth_val' / 'metrics_summary.json').is_file()
    with pytest.raises(FileNotFoundError, match='results json .* does not exist'):
        tool.main([str(tmp_path / 'x.json'), '--data-root', data_root, '--version', VERSION, '--eval-set', 'val'])


def shifted(instances, dx):
    """The instances with their centres moved ``dx`` metres along the LiDAR x axis."""
    return [dict(inst, bbox_3d=[inst['bbox_3d'][0] + dx] + inst['bbox_3d'][1:]) for inst in instances]


def test_a_fixed_half_metre_offset_gives_amotp_half_a_metre(val, tmp_path):
    """Every GT box predicted 0.5 m off (inside the 2 m match distance): all recall levels are reached, every match
    is 0.5 m away, so AMOTP = 0.5 for every class with GT and overall, while AMOTA stays 1."""
    _, _, data_list, _ = val
    metrics = evaluate(val, tmp_path, [prediction(info, shifted(gt_tracks(info), 0.5)) for info in data_list],
                       per_city=False)
    assert metrics['amotp'] == pytest.approx(0.5, abs=1e-4)
    assert (metrics['amota'], metrics['fp'], metrics['fn'], metrics['ids']) == (1.0, 0.0, 0.0, 0.0)


def test_a_phantom_car_on_the_ego_vehicle_counts_one_false_positive_per_frame(val, tmp_path):
    """A car predicted at the LiDAR origin (where the ego vehicle is, no GT within the 2 m match distance) in the
    first ``k`` frames: exactly ``k`` false positives, recall and matches untouched, car AMOTA below 1."""
    _, _, data_list, classes = val
    k = 3
    phantom = dict(bbox_3d=[0.0, 0.0, -1.0, 4.5, 1.9, 1.6, 0.0], velocity=[0.0, 0.0],
                   bbox_label_3d=classes.index('car'), instance_id=10 ** 6)
    truth = evaluate(val, tmp_path / 'truth', [prediction(info, gt_tracks(info)) for info in data_list],
                     per_city=False)
    metrics = evaluate(val, tmp_path / 'fp', [prediction(info, gt_tracks(info) + [phantom] * (pos < k))
                                              for pos, info in enumerate(data_list)], per_city=False)
    assert (metrics['fp'], metrics['fn'], metrics['ids'], metrics['tp']) == (float(k), 0.0, 0.0, truth['tp'])
    assert metrics['recall'] == 1.0 and 0.0 < metrics['car_amota'] < 1.0
