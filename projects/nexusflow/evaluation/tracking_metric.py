"""nuScenes multi-object tracking metric (AMOTA, AMOTP, recall, MOTA, IDS, ...) through the official devkit.

mmdet3d has no tracking metric; this follows UniAD's ``NuScenesE2EDataset._evaluate_single`` (devkit
``TrackingEval`` with ``tracking_nips_2019``) as an mmengine ``BaseMetric``, adds per-city figures, keys the results
by sample token (independent of the number of processes) and explains the devkit's failure modes.
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import mmengine
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmdet3d.registry import METRICS
from ..core.frames import lidar2global_of
from .result_utils import dataset_setting, evaluation_dir, get_meta, unique_by_token
from .tables import TRACKING_COLUMNS, class_table, log_tables, scope_table
from .tracking_eval import evaluate_tracking_results, load_tracking_config
from .tracking_format import TRACKING_RESULT_META, sample_tracking_boxes

__all__ = ['NuScenesTrackingMetric', 'resolve_eval_set']

# eval_set used when neither the argument nor the info pkl names one
DEFAULT_EVAL_SETS = {'v1.0-trainval': 'val', 'v1.0-mini': 'mini_val', 'v1.0-test': 'test'}
RESULT_FILE = 'results_nusc_tracking.json'


def resolve_eval_set(version: str, eval_set: Optional[str] = None, ann_file: Optional[str] = None) -> str:
    """The devkit split to evaluate on.

    Order: ``eval_set`` if given; else the ``'eval_set'`` entry of the info pkl's metainfo (written by
    ``tools/create_data.py``: ``'val'`` / ``'mini_val'`` / ``'synth_val'`` for the val pkl of v1.0-trainval /
    v1.0-mini / v1.0-synth); else ``'val'`` for v1.0-trainval, ``'mini_val'`` for v1.0-mini, ``'test'`` for
    v1.0-test. A custom version (whose splits live in ``<data_root>/<version>/splits.json``) needs one of the first
    two. The pkl's metainfo ``'version'`` must equal ``version``.
    """
    if eval_set is not None:
        return eval_set
    if ann_file is not None:
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f'ann_file {ann_file} does not exist; write the info pkls with '
                                    f'tools/create_data.py nuscenes ...')
        metainfo = mmengine.load(ann_file).get('metainfo', {})
        if metainfo.get('version', version) != version:
            raise ValueError(f'ann_file {ann_file} was written for {metainfo["version"]}, but the metric evaluates '
                             f'{version}; pass the info pkl of {version} or set version={metainfo["version"]!r}')
        if 'eval_set' in metainfo:
            return metainfo['eval_set']
    if version in DEFAULT_EVAL_SETS:
        return DEFAULT_EVAL_SETS[version]
    raise ValueError(f'cannot tell the eval_set of the custom version {version!r}: pass eval_set= (a key of '
                     f'<data_root>/{version}/splits.json, e.g. "synth_val") or an ann_file whose metainfo has '
                     f'"eval_set"')


def tracking_record(sample: Dict[str, Any], with_ids: bool = True,
                    metric_name: str = 'NuScenesTrackingMetric') -> Dict[str, Any]:
    """The CPU record ``process`` keeps for one predicted sample (numpy arrays, picklable, small).

    Args:
        sample: ``Det3DDataSample.to_dict()`` with ``pred_instances_3d`` (``bboxes_3d`` LiDARInstance3DBoxes
            ``[M, 9]`` bottom centre + velocity, ``scores_3d [M]``, ``labels_3d [M]`` and, with ``with_ids``,
            ``instance_ids [M]``) and the meta keys ``token``, ``ego2global`` and ``lidar2ego`` (4x4).
        with_ids: require and keep the track ids (the detection metric does not need them).
        metric_name: the metric named in the errors.

    Returns:
        dict ``token`` (str), ``boxes`` float64 ``[M, 9]`` (LiDAR frame), ``scores`` float64 ``[M]``, ``labels``
        int64 ``[M]``, ``ids`` int64 ``[M]`` (only with ``with_ids``), ``lidar2global`` float64 ``[4, 4]``.
    """
    name = metric_name
    pred = get_meta(sample, 'pred_instances_3d', name)
    keys = ('bboxes_3d', 'scores_3d', 'labels_3d') + (('instance_ids', ) if with_ids else ())
    missing = [key for key in keys if key not in pred]
    if missing:
        raise KeyError(f'{name}: pred_instances_3d lacks {missing}; the model must output boxes, scores, '
                       f'labels' + (' and track ids (instance_ids)' if with_ids else ''))
    boxes = pred['bboxes_3d']
    boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
    boxes = np.asarray(boxes.detach().cpu() if hasattr(boxes, 'detach') else boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 9:
        raise ValueError(f'{name}: bboxes_3d must be [M, 9] (x, y, z, l, w, h, yaw, vx, vy), got shape '
                         f'{boxes.shape}; build LiDARInstance3DBoxes with box_dim=9')
    record = dict(token=str(get_meta(sample, 'token', name)), boxes=boxes,
                  scores=_to_numpy(pred['scores_3d'], np.float64), labels=_to_numpy(pred['labels_3d'], np.int64),
                  lidar2global=lidar2global_of(sample))
    if with_ids:
        record['ids'] = _to_numpy(pred['instance_ids'], np.int64)
    return record


def _to_numpy(values, dtype) -> np.ndarray:
    """A tensor or array-like as a flat numpy array of ``dtype``."""
    values = values.detach().cpu().numpy() if hasattr(values, 'detach') else values
    return np.asarray(values, dtype=dtype).reshape(-1)


@METRICS.register_module('NexusFlowNuScenesTrackingMetric')
class NuScenesTrackingMetric(BaseMetric):
    """nuScenes tracking metric: the devkit ``TrackingEval`` on the whole split and, with ``per_city``, on each city.

    ``data_root``, ``ann_file`` and ``version`` default to the evaluated dataset's (``dataset_meta``, see
    ``result_utils.dataset_setting``), so a config's evaluator needs none of them. Each devkit pass is logged with
    its sample count and duration, and the figures are logged as tables (overall and per city; AMOTA per class) at
    the end of the evaluation.

    Args:
        data_root: nuScenes root (holds ``<version>/``; custom versions also ``<version>/splits.json``); None -> the
            dataset's.
        ann_file: info pkl of the evaluated split; read only to find the eval_set when ``eval_set`` is None
            (see ``resolve_eval_set``); None -> the dataset's.
        version: nuScenes version, e.g. ``'v1.0-trainval'``, ``'v1.0-mini'``, ``'v1.0-synth'``; None -> the
            dataset's (its info pkl's metainfo).
        eval_set: devkit split (``'val'``, ``'mini_val'``, ``'synth_val'``, ...); None -> ``resolve_eval_set``.
        eval_config: devkit tracking config name or json path.
        output_dir: folder for ``results_nusc_tracking.json`` and the devkit's ``metrics_summary.json``,
            ``metrics_details.json``, ``plots/`` (per city in ``<city>/``). None -> ``tracking_eval/`` next to the
            runner's log file (``<work_dir>/<timestamp>/tracking_eval``), or a temporary folder that is removed
            after the evaluation when no log file exists. Each evaluation overwrites the previous one.
        per_city: also report every figure per city (``boston/amota``, ``singapore/amota``, ...). Cost: one more
            devkit pass per city over that city's samples, together about as long as the overall pass (the
            evaluation takes about twice as long). The devkit cannot split one pass by city: it picks each class's
            recall thresholds from the scores of all evaluated samples, so per-city figures need their own pass.
        render_curves: let the devkit draw its PDF curves (slow).
        format_only: only write the result json (e.g. for the test server) and return ``{}``.
        verbose: print the devkit's own progress (per class and recall threshold) besides the logged lines.
        collect_device: ``'cpu'`` or ``'gpu'``, how mmengine gathers the results of the ranks.
        prefix: prefix of the metric names; None -> ``'track'``.

    Metric names (under ``<prefix>/``): ``amota, amotp, recall, motar, gt, mota, motp, mt, ml, faf, tp, fp, fn,
    ids, frag, tid, lgd``, ``<class>_amota`` per tracking class with ground truth, and ``<city>/<name>``.
    """
    default_prefix = 'track'

    def __init__(self,
                 data_root: Optional[str] = None,
                 ann_file: Optional[str] = None,
                 version: Optional[str] = None,
                 eval_set: Optional[str] = None,
                 eval_config: str = 'tracking_nips_2019',
                 output_dir: Optional[str] = None,
                 per_city: bool = True,
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
        self.per_city = per_city
        self.render_curves = render_curves
        self.format_only = format_only
        self.verbose = verbose

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep one CPU record per predicted sample (see ``tracking_record``); ``data_batch`` is not used."""
        for sample in data_samples:
            self.results.append(tracking_record(sample))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Write the devkit result json from the gathered records and evaluate it.

        Args:
            results: the records of all ranks, in any order (they are sorted by sample token).

        Returns:
            dict of floats (see the class docstring); ``{}`` when ``format_only``.
        """
        with evaluation_dir(self.output_dir, 'tracking_eval') as output_dir:
            return self._write_and_evaluate(results, output_dir)

    def _class_names(self) -> List[str]:
        """The model's class names from ``dataset_meta`` (set by the runner from the dataset's metainfo)."""
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise KeyError('NuScenesTrackingMetric needs dataset_meta["classes"] (the model classes, set by the '
                           'runner from the dataset metainfo; set metric.dataset_meta when used standalone)')
        return list(self.dataset_meta['classes'])

    def _write_and_evaluate(self, results: List[dict], output_dir: str) -> Dict[str, float]:
        """Dump ``<output_dir>/results_nusc_tracking.json`` and run the devkit unless ``format_only``."""
        tracking_names = load_tracking_config(self.eval_config).tracking_names
        class_names = self._class_names()
        submission = dict(meta=dict(TRACKING_RESULT_META), results={
            rec['token']: sample_tracking_boxes(rec['token'], rec['boxes'], rec['scores'], rec['labels'],
                                                rec['ids'], rec['lidar2global'], class_names, tracking_names)
            for rec in unique_by_token(results, type(self).__name__)})
        mmengine.mkdir_or_exist(output_dir)
        result_path = osp.join(output_dir, RESULT_FILE)
        mmengine.dump(submission, result_path)
        if self.format_only:
            print_log(f'tracking results of {len(submission["results"])} samples written to {result_path}',
                      logger='current')
            return {}
        data_root, version = dataset_setting(self, 'data_root'), dataset_setting(self, 'version')
        eval_set = resolve_eval_set(version, self.eval_set, dataset_setting(self, 'ann_file', required=False))
        metrics = evaluate_tracking_results(result_path, data_root, version, eval_set,
                                            output_dir, eval_config=self.eval_config, per_city=self.per_city,
                                            render_curves=self.render_curves, verbose=self.verbose)
        log_tables(scope_table(f'tracking ({version} {eval_set})', metrics, TRACKING_COLUMNS),
                   class_table('tracking AMOTA per class', metrics, '_amota'))
        return metrics
