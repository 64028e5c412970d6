"""nuScenes detection metric (NDS, mAP, mATE ... mAAE) of the track head's per-frame boxes, devkit ``DetectionEval``.

UniAD reports NDS and mAP of its stage-1 model beside AMOTA, computed from the same per-frame outputs. mmdet3d's
``NuScenesMetric`` needs its own info files and data-info indices; this metric reads what the tracking metric reads
(``tracking_record`` without the track ids, the same LiDAR -> global conversion ``lidar_boxes_to_global``) and runs
the devkit's ``DetectionEval`` on the devkit split (predefined or custom, e.g. ``synth_val`` of the synthetic set).
Attributes are not predicted by the track head; each box gets mmdet3d's velocity-based default attribute
(``NuScenesMetric.DefaultAttribute`` and the 0.2 m/s rule of its ``_format_lidar_bbox``), as UniAD does.
The devkit pass is logged before and after (sample count, duration, NDS) and the figures end as logged tables.
"""
import json
import logging
import time
from typing import Any, Dict, List, Optional, Sequence

import mmengine
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from nuscenes import NuScenes
from nuscenes.eval.common.config import config_factory
from nuscenes.eval.common.loaders import add_center_dist, filter_eval_boxes, load_gt_of_sample_tokens
from nuscenes.eval.detection.constants import TP_METRICS
from nuscenes.eval.detection.data_classes import DetectionBox, DetectionConfig
from nuscenes.eval.detection.evaluate import DetectionEval

from mmdet3d.evaluation.metrics.nuscenes_metric import NuScenesMetric
from mmdet3d.registry import METRICS
from .result_utils import dataset_setting, evaluation_dir, unique_by_token
from .tables import DETECTION_COLUMNS, class_table, log_tables, scope_table
from .tracking_eval import _check_box_counts, _check_result_tokens, split_sample_tokens
from .tracking_format import TRACKING_RESULT_META, benchmark_boxes
from .tracking_metric import resolve_eval_set, tracking_record

__all__ = ['NuScenesDetectionMetric', 'sample_detection_boxes', 'default_attributes', 'evaluate_detection_results']

RESULT_FILE = 'results_nusc_detection.json'
MOVING_SPEED = 0.2  # m/s, mmdet3d's threshold between the moving and the still attribute
# nuScenes error names -> the names the devkit prints (mATE, ...), lower-cased for the metric keys
TP_NAMES = dict(trans_err='mate', scale_err='mase', orient_err='maoe', vel_err='mave', attr_err='maae')
_MOVING_ATTRIBUTE = dict(car='vehicle.moving', construction_vehicle='vehicle.moving', bus='vehicle.moving',
                         truck='vehicle.moving', trailer='vehicle.moving', bicycle='cycle.with_rider',
                         motorcycle='cycle.with_rider')
_STILL_ATTRIBUTE = dict(pedestrian='pedestrian.standing', bus='vehicle.stopped')


def default_attributes(names: Sequence[str], speeds: np.ndarray) -> List[str]:
    """mmdet3d's attribute of each box from its class and speed (``NuScenesMetric._format_lidar_bbox``).

    Args:
        names: detection class name of each box (``'car'``, ...).
        speeds: float ``[M]`` ground speed in m/s.

    Returns:
        list of ``M`` attribute names (``''`` for barriers and traffic cones).
    """
    table = NuScenesMetric.DefaultAttribute
    return [(_MOVING_ATTRIBUTE if speed > MOVING_SPEED else _STILL_ATTRIBUTE).get(name, table[name])
            for name, speed in zip(names, speeds)]


def sample_detection_boxes(token: str, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                           lidar2global: np.ndarray, class_names: Sequence[str],
                           detection_names: Sequence[str]) -> List[dict]:
    """The devkit ``DetectionBox`` dicts of one sample; boxes of classes the benchmark does not know are dropped.

    Args:
        token: nuScenes sample token.
        boxes: float ``[M, 9]`` LiDAR-frame boxes ``[x, y, z_bottom, l, w, h, yaw, vx, vy]``.
        scores: float ``[M]`` finite scores.
        labels: int ``[M]`` indices into ``class_names``.
        lidar2global: float ``[4, 4]``.
        class_names: the model's classes.
        detection_names: the classes of the detection benchmark (``DetectionConfig.class_names``).

    Returns:
        list of dicts with ``sample_token, translation, size, rotation, velocity, detection_name,
        detection_score, attribute_name`` in the order of the input boxes.
    """
    keep, names, scores, glob = benchmark_boxes(token, boxes, scores, labels, lidar2global, class_names,
                                                detection_names)
    attributes = default_attributes(names[keep], np.linalg.norm(glob['velocity'], axis=1))
    return [dict(sample_token=token,
                 translation=glob['translation'][k].tolist(),
                 size=glob['size'][k].tolist(),
                 rotation=glob['rotation'][k].tolist(),
                 velocity=glob['velocity'][k].tolist(),
                 detection_name=str(names[i]),
                 detection_score=float(scores[i]),
                 attribute_name=attributes[k]) for k, i in enumerate(keep)]


def load_detection_config(eval_config: str) -> DetectionConfig:
    """``DetectionConfig`` from a devkit config name (``'detection_cvpr_2019'``) or the path of a config json."""
    if eval_config.endswith('.json'):
        return DetectionConfig.deserialize(mmengine.load(eval_config))
    return config_factory(eval_config)


def evaluate_detection_results(result_path: str, data_root: str, version: str, eval_set: str, output_dir: str,
                               eval_config: str = 'detection_cvpr_2019', render_curves: bool = False,
                               verbose: bool = False) -> Dict[str, float]:
    """Evaluate a nuScenes detection result json on ``eval_set`` with the devkit's ``DetectionEval``.

    Args:
        result_path: result json (``{'meta': ..., 'results': {sample_token: [DetectionBox dicts]}}``).
        data_root: nuScenes root holding ``<version>/`` (and ``<version>/splits.json`` for custom splits).
        version: e.g. ``'v1.0-trainval'``, ``'v1.0-synth'``.
        eval_set: devkit split, e.g. ``'val'``, ``'synth_val'``.
        output_dir: where the devkit writes ``metrics_summary.json``, ``metrics_details.json`` and ``plots/``.
        eval_config: devkit config name or path of a config json.
        render_curves: let the devkit draw its PDF curves.
        verbose: print the devkit's progress and summary.

    Returns:
        dict of floats: ``nds``, ``map``, ``mate, mase, maoe, mave, maae`` (class means of the TP errors, as the
        devkit prints them) and ``<class>_ap`` for each class with ground truth in the split.
    """
    config = load_detection_config(eval_config)
    print_log(f'detection evaluation: loading nuScenes {version} from {data_root}', logger='current')
    nusc = NuScenes(version=version, dataroot=data_root, verbose=verbose)
    with open(result_path) as f:
        results = json.load(f)['results']
    _check_result_tokens(list(results), split_sample_tokens(nusc, eval_set), eval_set, result_path)
    _check_box_counts(results, config.max_boxes_per_sample, result_path)
    if not any(results.values()):
        return _worst_metrics(nusc, config, eval_set, result_path)
    print_log(f'detection evaluation: devkit DetectionEval on eval_set {eval_set!r} ({len(results)} samples, '
              f'{len(config.class_names)} classes) ...', logger='current')
    start = time.perf_counter()
    evaluator = DetectionEval(nusc, config, result_path, eval_set, output_dir=output_dir, verbose=verbose)
    if verbose:
        summary = evaluator.main(render_curves=render_curves)
    else:
        metrics, details = evaluator.evaluate()
        if render_curves:
            evaluator.render(metrics, details)
        summary = metrics.serialize()
        mmengine.dump(summary, f'{output_dir}/metrics_summary.json', indent=2)
        mmengine.dump(details.serialize(), f'{output_dir}/metrics_details.json', indent=2)
    flat = dict(nds=float(summary['nd_score']), map=float(summary['mean_ap']))
    print_log(f'detection evaluation: done in {time.perf_counter() - start:.1f} s, NDS {flat["nds"]:.4f}',
              logger='current')
    flat.update({TP_NAMES[name]: float(summary['tp_errors'][name]) for name in TP_METRICS})
    gt_classes = {box.detection_name for box in evaluator.gt_boxes.all}
    flat.update({f'{name}_ap': float(summary['mean_dist_aps'][name]) for name in config.class_names
                 if name in gt_classes})
    return flat


def _worst_metrics(nusc, config: DetectionConfig, eval_set: str, result_path: str) -> Dict[str, float]:
    """What ``DetectionEval`` gives a class without predictions (AP 0, every error 1) for all classes at once.

    The devkit cannot evaluate a result file without any box (its box filter fails with ``Invalid box type``).
    """
    print_log(f'detection evaluation: {result_path} holds no predicted box; every metric takes its worst value '
              f'(NDS 0, mAP 0, errors 1).', logger='current', level=logging.WARNING)
    gt_boxes = load_gt_of_sample_tokens(nusc, split_sample_tokens(nusc, eval_set), DetectionBox)
    gt_boxes = filter_eval_boxes(nusc, add_center_dist(nusc, gt_boxes), config.class_range)
    gt_classes = {box.detection_name for box in gt_boxes.all}
    flat = dict(nds=0.0, map=0.0, **{TP_NAMES[name]: 1.0 for name in TP_METRICS})
    flat.update({f'{name}_ap': 0.0 for name in config.class_names if name in gt_classes})
    return flat


@METRICS.register_module('NexusFlowNuScenesDetectionMetric')
class NuScenesDetectionMetric(BaseMetric):
    """nuScenes detection metric (NDS, mAP and the TP errors) of the per-frame boxes of a tracking model.

    ``data_root``, ``ann_file`` and ``version`` default to the evaluated dataset's (``dataset_meta``, see
    ``result_utils.dataset_setting``). The figures are logged as tables (summary; AP per class) at the end.

    Args:
        data_root: nuScenes root (holds ``<version>/``; custom versions also ``<version>/splits.json``); None ->
            the dataset's.
        ann_file: info pkl of the evaluated split, read only to find the eval_set (``resolve_eval_set``); None ->
            the dataset's.
        version: nuScenes version; None -> the dataset's (its info pkl's metainfo).
        eval_set: devkit split; None -> ``resolve_eval_set``.
        eval_config: devkit detection config name or json path.
        output_dir: folder for ``results_nusc_detection.json`` and the devkit's summaries. None ->
            ``detection_eval/`` next to the runner's log file, or a temporary folder without a log file.
        render_curves: let the devkit draw its PDF curves (slow).
        format_only: only write the result json and return ``{}``.
        verbose: print the devkit's progress and per-class table.
        collect_device: ``'cpu'`` or ``'gpu'``.
        prefix: prefix of the metric names; None -> ``'det'``.

    Metric names (under ``<prefix>/``): ``nds, map, mate, mase, maoe, mave, maae`` and ``<class>_ap`` for each
    class with ground truth. An empty class range (no GT of a class) counts as AP 0 in ``map``, as in the devkit.
    """
    default_prefix = 'det'

    def __init__(self,
                 data_root: Optional[str] = None,
                 ann_file: Optional[str] = None,
                 version: Optional[str] = None,
                 eval_set: Optional[str] = None,
                 eval_config: str = 'detection_cvpr_2019',
                 output_dir: Optional[str] = None,
                 render_curves: bool = False,
                 format_only: bool = False,
                 verbose: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.data_root = data_root
        self.ann_file = ann_file
        self.version = version
        self.eval_set = eval_set
        self.eval_config = eval_config
        self.output_dir = output_dir
        self.render_curves = render_curves
        self.format_only = format_only
        self.verbose = verbose

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep one CPU record per predicted sample (``tracking_record`` without ids); ``data_batch`` unused."""
        for sample in data_samples:
            self.results.append(tracking_record(sample, with_ids=False, metric_name=type(self).__name__))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Write the devkit result json from the gathered records (sorted by token) and evaluate it."""
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise KeyError('NuScenesDetectionMetric needs dataset_meta["classes"] (set by the runner from the '
                           'dataset metainfo; set metric.dataset_meta when used standalone)')
        class_names = list(self.dataset_meta['classes'])
        detection_names = load_detection_config(self.eval_config).class_names
        submission = dict(meta=dict(TRACKING_RESULT_META), results={
            rec['token']: sample_detection_boxes(rec['token'], rec['boxes'], rec['scores'], rec['labels'],
                                                 rec['lidar2global'], class_names, detection_names)
            for rec in unique_by_token(results, type(self).__name__)})
        with evaluation_dir(self.output_dir, 'detection_eval') as output_dir:
            mmengine.mkdir_or_exist(output_dir)
            result_path = f'{output_dir}/{RESULT_FILE}'
            mmengine.dump(submission, result_path)
            if self.format_only:
                print_log(f'detection results of {len(submission["results"])} samples written to {result_path}',
                          logger='current')
                return {}
            data_root, version = dataset_setting(self, 'data_root'), dataset_setting(self, 'version')
            eval_set = resolve_eval_set(version, self.eval_set, dataset_setting(self, 'ann_file', required=False))
            metrics = evaluate_detection_results(result_path, data_root, version, eval_set,
                                                 output_dir, eval_config=self.eval_config,
                                                 render_curves=self.render_curves, verbose=self.verbose)
        log_tables(scope_table(f'detection ({version} {eval_set})', metrics, DETECTION_COLUMNS),
                   class_table('detection AP per class', metrics, '_ap', fmt='.4f'))
        return metrics
