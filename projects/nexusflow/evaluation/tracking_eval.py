"""Run the nuScenes-devkit tracking evaluation on a result json: the whole split and each city.

``SubsetTrackingEval`` is the devkit's ``TrackingEval`` with two changes to its constructor only (``evaluate``,
``render`` and ``main`` are inherited unchanged): it takes an already loaded ``NuScenes`` (so that the overall and
the per-city runs share one database load) and an explicit list of sample tokens (the split, or the samples of
one city), loaded through the devkit's own ``load_prediction_of_sample_tokens`` / ``load_gt_of_sample_tokens``.
A prediction set without any box is evaluated as such (every metric at its worst value) instead of failing in
the devkit's box filter with ``Invalid box type: None``.

Progress: the database load and each devkit pass (overall, then one per city) are logged through mmengine's
logger with their sample and scene counts before they start and their duration and AMOTA when they end; the
devkit's own (much longer) progress output is printed with ``verbose``.
"""
import json
import logging
import os
import os.path as osp
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import print_log
from nuscenes import NuScenes
from nuscenes.eval.common.config import config_factory
from nuscenes.eval.common.loaders import (add_center_dist, filter_eval_boxes, get_samples_of_scenes,
                                          load_gt_of_sample_tokens, load_prediction_of_sample_tokens)
from nuscenes.eval.tracking.data_classes import TrackingBox, TrackingConfig
from nuscenes.eval.tracking.evaluate import TrackingEval
from nuscenes.eval.tracking.loaders import create_tracks
from nuscenes.eval.tracking.utils import category_to_tracking_name
from nuscenes.utils.splits import get_scenes_of_split, is_predefined_split

from ..datasets.geo_split import city_of

__all__ = ['SubsetTrackingEval', 'evaluate_tracking_results', 'load_tracking_config', 'split_sample_tokens',
           'city_of', 'TRACKING_SUMMARY_METRICS']

# the top-level figures of TrackingMetrics.serialize() (nuscenes/eval/tracking/constants.py), as UniAD logs them
TRACKING_SUMMARY_METRICS = ('amota', 'amotp', 'recall', 'motar', 'gt', 'mota', 'motp', 'mt', 'ml', 'faf', 'tp',
                            'fp', 'fn', 'ids', 'frag', 'tid', 'lgd')
_VERSION_SUFFIX = {'train': 'trainval', 'val': 'trainval', 'train_detect': 'trainval', 'train_track': 'trainval',
                   'mini_train': 'mini', 'mini_val': 'mini', 'test': 'test'}


def load_tracking_config(eval_config: str):
    """``TrackingConfig`` from a devkit config name (``'tracking_nips_2019'``) or the path of a config json."""
    if eval_config.endswith('.json'):
        if not osp.isfile(eval_config):
            raise FileNotFoundError(f'tracking eval config {eval_config} does not exist')
        with open(eval_config) as f:
            return TrackingConfig.deserialize(json.load(f))
    return config_factory(eval_config)


def split_sample_tokens(nusc, eval_set: str) -> List[str]:
    """Sample tokens of a devkit split (predefined or from ``<dataroot>/<version>/splits.json``), table order."""
    if is_predefined_split(eval_set) and not nusc.version.endswith(_VERSION_SUFFIX[eval_set]):
        raise ValueError(f'eval_set {eval_set!r} belongs to v1.0-{_VERSION_SUFFIX[eval_set]}, but the database is '
                         f'{nusc.version}; pass the eval_set of that version (custom versions: a key of '
                         f'{osp.join(nusc.dataroot, nusc.version, "splits.json")})')
    return get_samples_of_scenes(get_scenes_of_split(eval_set, nusc), nusc)


class SubsetTrackingEval(TrackingEval):
    """The devkit ``TrackingEval`` on given sample tokens of a preloaded ``NuScenes``.

    Args:
        config: ``TrackingConfig`` (e.g. ``config_factory('tracking_nips_2019')``).
        result_path: result json in the devkit format (every token of ``sample_tokens`` must be a key).
        eval_set: devkit split the tokens belong to (the devkit builds the tracks of the split's scenes).
        output_dir: where ``metrics_summary.json``, ``metrics_details.json`` and ``plots/`` go.
        nusc: a loaded ``nuscenes.NuScenes``.
        sample_tokens: the samples to evaluate; whole scenes (the devkit walks each scene from its first sample).
        verbose: print the devkit's progress.
        render_classes: classes whose per-scene renders the devkit writes, or None.
    """

    def __init__(self, config, result_path: str, eval_set: str, output_dir: str, nusc,
                 sample_tokens: Sequence[str], verbose: bool = False,
                 render_classes: Optional[List[str]] = None) -> None:
        # Replaces TrackingEval.__init__ (which loads its own NuScenes and the whole split); same steps otherwise.
        self.cfg = config
        self.result_path = result_path
        self.eval_set = eval_set
        self.output_dir = output_dir
        self.verbose = verbose
        self.render_classes = render_classes
        self.plot_dir = osp.join(output_dir, 'plots')
        os.makedirs(self.plot_dir, exist_ok=True)
        pred_boxes, self.meta = load_prediction_of_sample_tokens(
            result_path, config.max_boxes_per_sample, TrackingBox, sample_tokens=list(sample_tokens),
            verbose=verbose)
        gt_boxes = load_gt_of_sample_tokens(nusc, list(sample_tokens), TrackingBox, verbose=verbose)
        pred_boxes = add_center_dist(nusc, pred_boxes)
        gt_boxes = add_center_dist(nusc, gt_boxes)
        if len(pred_boxes.all) > 0:
            pred_boxes = filter_eval_boxes(nusc, pred_boxes, config.class_range, verbose=verbose)
        gt_boxes = filter_eval_boxes(nusc, gt_boxes, config.class_range, verbose=verbose)
        self.sample_tokens = gt_boxes.sample_tokens
        self.tracks_gt = create_tracks(gt_boxes, nusc, eval_set, gt=True)
        self.tracks_pred = create_tracks(pred_boxes, nusc, eval_set, gt=False)


def _check_result_tokens(result_tokens: Sequence[str], split_tokens: Sequence[str], eval_set: str,
                         result_path: str) -> None:
    """Raise ``KeyError`` when the result json misses samples of the split or holds samples outside it."""
    result_set, split_set = set(result_tokens), set(split_tokens)
    unknown = sorted(result_set - split_set)
    if unknown:
        raise KeyError(f'{result_path} holds {len(unknown)} sample tokens that are not in eval_set {eval_set!r} '
                       f'(e.g. {unknown[:3]}); were the predictions made on another split or dataset? Check '
                       f'ann_file / eval_set / version.')
    missing = sorted(split_set - result_set)
    if missing:
        raise KeyError(f'{result_path} lacks {len(missing)} of the {len(split_set)} sample tokens of eval_set '
                       f'{eval_set!r} (e.g. {missing[:3]}); the devkit needs every sample of the split (with [] '
                       f'where nothing was predicted): run the test loop over the whole split (no `indices` / '
                       f'`load_interval` in the test dataset).')


def _check_box_counts(results: Dict[str, list], max_boxes: int, result_path: str) -> None:
    """Raise ``ValueError`` when a sample holds more boxes than the devkit accepts."""
    too_many = {token: len(boxes) for token, boxes in results.items() if len(boxes) > max_boxes}
    if too_many:
        token, count = max(sorted(too_many.items()), key=lambda item: item[1])
        raise ValueError(f'{result_path}: {len(too_many)} samples hold more than the {max_boxes} boxes per sample '
                         f'that the devkit accepts (e.g. {token}: {count}); lower the number of boxes the tracker '
                         f'outputs (max_num / score threshold)')


def _run_devkit(config, result_path: str, eval_set: str, output_dir: str, nusc, sample_tokens: Sequence[str],
                render_curves: bool, verbose: bool, name: str, step: str) -> dict:
    """One ``SubsetTrackingEval.main``, logged before and after, with the devkit's bare assertions explained.

    Args:
        name: what is evaluated, for the messages (e.g. ``"the boston samples of 'val'"``).
        step: the pass's place in the evaluation, e.g. ``'2/3'``.
    """
    scenes = {nusc.get('sample', token)['scene_token'] for token in sample_tokens}
    print_log(f'tracking evaluation [{step}]: devkit TrackingEval on {name} ({len(sample_tokens)} samples, '
              f'{len(scenes)} scene{"s" * (len(scenes) != 1)}, {len(config.tracking_names)} classes) ...',
              logger='current')
    start = time.perf_counter()
    evaluator = SubsetTrackingEval(config, result_path, eval_set, output_dir, nusc, sample_tokens, verbose=verbose)
    try:
        summary = evaluator.main(render_curves=render_curves)
    except AssertionError as err:
        raise RuntimeError(
            f'nuscenes-devkit TrackingEval failed an internal assertion while evaluating {name} ({err!r}). The '
            f'usual one is `unachieved_thresholds + duplicate_thresholds + len(thresh_metrics) == num_thresholds` '
            f'(nuscenes-devkit#700/#952, UniAD#212): devkit < 1.2.0 miscounts thresholds when several recall '
            f'levels are unachieved. Use nuscenes-devkit==1.2.0 with motmetrics==1.4.0 and numpy<2 (see '
            f'requirements), and give the tracks finite, varied scores. Result file: {result_path}') from err
    print_log(f'tracking evaluation [{step}]: {name} done in {time.perf_counter() - start:.1f} s, AMOTA '
              f'{summary["amota"]:.4f}', logger='current')
    return summary


def _flatten(summary: dict, class_names: Sequence[str], prefix: str = '') -> Dict[str, float]:
    """``{prefix}{metric}`` for the summary figures and ``{prefix}{class}_amota`` for classes with GT."""
    flat = {f'{prefix}{name}': float(summary[name]) for name in TRACKING_SUMMARY_METRICS}
    for name in class_names:
        value = summary['label_metrics']['amota'].get(name, float('nan'))
        if not np.isnan(value):
            flat[f'{prefix}{name}_amota'] = float(value)
    return flat


def _sample_tokens_by_city(nusc, tokens: Sequence[str]) -> Dict[str, List[str]]:
    """``{city: [tokens]}`` from each sample's scene log location, cities sorted."""
    by_city = defaultdict(list)
    for token in tokens:
        scene = nusc.get('scene', nusc.get('sample', token)['scene_token'])
        by_city[city_of(nusc.get('log', scene['log_token'])['location'])].append(token)
    return dict(sorted(by_city.items()))


def _has_gt_box(nusc, tokens: Sequence[str], tracking_names: Sequence[str]) -> bool:
    """Whether any sample of ``tokens`` holds an annotation of a tracking class with at least one point."""
    for token in tokens:
        for ann_token in nusc.get('sample', token)['anns']:
            ann = nusc.get('sample_annotation', ann_token)
            if (category_to_tracking_name(ann['category_name']) in tracking_names
                    and ann['num_lidar_pts'] + ann['num_radar_pts'] > 0):
                return True
    return False


def evaluate_tracking_results(result_path: str, data_root: str, version: str, eval_set: str, output_dir: str,
                              eval_config: str = 'tracking_nips_2019', per_city: bool = True,
                              render_curves: bool = False, verbose: bool = False) -> Dict[str, float]:
    """Evaluate a nuScenes tracking result json on ``eval_set``, overall and per city.

    Args:
        result_path: result json (``{'meta': ..., 'results': {sample_token: [TrackingBox dicts]}}``).
        data_root: nuScenes root holding ``<version>/`` (and ``<version>/splits.json`` for custom splits).
        version: e.g. ``'v1.0-trainval'``, ``'v1.0-mini'``, ``'v1.0-synth'``.
        eval_set: devkit split, e.g. ``'val'``, ``'mini_val'``, ``'synth_val'``.
        output_dir: the devkit's summaries go to ``output_dir`` (overall) and ``output_dir/<city>/``.
        eval_config: devkit config name or path of a config json.
        per_city: also evaluate the samples of each city (``boston``, ``singapore``) on their own: one more
            devkit pass per city over its samples (sharing the database load), together about as long as the
            overall pass.
        render_curves: let the devkit draw its PDF curves into ``<output_dir>/plots``.
        verbose: print the devkit's progress.

    Returns:
        dict of floats: ``amota, amotp, recall, motar, gt, mota, motp, mt, ml, faf, tp, fp, fn, ids, frag, tid,
        lgd`` (AMOTA/recall/MOTA in [0, 1], AMOTP/MOTP in metres; as in the devkit, ``mt, ml, tp, fp, fn, ids,
        frag`` are summed over the classes and the others are class means), ``<class>_amota`` for each tracking
        class with ground truth, and the same under ``<city>/`` when ``per_city``.
    """
    if not osp.isfile(result_path):
        raise FileNotFoundError(f'tracking result file {result_path} does not exist; write it with '
                                f'NuScenesTrackingMetric (test loop) or pass the path of a saved results json')
    config = load_tracking_config(eval_config)
    print_log(f'tracking evaluation: loading nuScenes {version} from {data_root}', logger='current')
    nusc = NuScenes(version=version, dataroot=data_root, verbose=verbose)
    tokens = split_sample_tokens(nusc, eval_set)
    with open(result_path) as f:
        results = json.load(f)
    if not isinstance(results.get('results'), dict):
        raise ValueError(f'{result_path} is not a nuScenes result json: expected a dict under "results"')
    _check_result_tokens(list(results['results']), tokens, eval_set, result_path)
    _check_box_counts(results['results'], config.max_boxes_per_sample, result_path)
    if not _has_gt_box(nusc, tokens, config.tracking_names):
        raise ValueError(f'eval_set {eval_set!r} of {version} has no ground-truth box of the tracking classes '
                         f'{config.tracking_names} with lidar/radar points: nothing to evaluate')
    if not any(results['results'].values()):
        print_log(f'tracking evaluation: {result_path} holds no predicted box in any of its {len(tokens)} '
                  f'samples; every metric takes its worst value (AMOTA 0, recall 0).', logger='current',
                  level=logging.WARNING)
    cities = _sample_tokens_by_city(nusc, tokens) if per_city else {}
    passes = 1 + len(cities)
    metrics = _flatten(_run_devkit(config, result_path, eval_set, output_dir, nusc, tokens, render_curves,
                                   verbose, f'eval_set {eval_set!r}', f'1/{passes}'), config.tracking_names)
    for index, (city, city_tokens) in enumerate(cities.items(), start=2):
        if not _has_gt_box(nusc, city_tokens, config.tracking_names):
            print_log(f'tracking evaluation [{index}/{passes}]: no ground truth in {city}; its per-city figures '
                      f'are skipped', logger='current', level=logging.WARNING)
            continue
        summary = _run_devkit(config, result_path, eval_set, osp.join(output_dir, city), nusc, city_tokens,
                              render_curves, verbose, f'the {city} samples of {eval_set!r}', f'{index}/{passes}')
        metrics.update(_flatten(summary, config.tracking_names, prefix=f'{city}/'))
    return metrics
