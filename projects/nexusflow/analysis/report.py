"""The feature-analysis report of ``tools/analyze_features.py``: MMD table, PCA scree, t-SNE, JSON summary.

For every feature set of a :class:`~.features.FeatureCollection` (pooled taps ``taps/<name>``, NexusFlow aggregator
embeddings ``embeddings/<task>`` and latents ``latents/<task>``):

- ``mean_norm`` / ``mean_std``: mean L2 norm of a sample's vector and mean per-dimension std over the samples (the
  collapse diagnostics: a latent much smaller than its embedding means the flow shrinks it);
- ``mmd_city``: squared MMD between the samples of two cities (Boston vs Singapore: under the S-Geo split the
  map-annotated vs the track-annotated samples, the papers' Table 1), mean +- std over random equal-size subsets;
- ``mmd_ref``: the same statistic between two random halves of all samples (same-distribution floor);
- ``pca``: the scree data (:func:`~.stats.pca_scree`) and the number of components holding 90 % of the variance.

For every group with several tasks of equal width (e.g. ``latents/track`` and ``latents/map``): ``mmd_task``, the
MMD between the tasks' features of the same samples. Figures: ``scree.png`` (every feature set) and
``tsne_<group>.png`` (one joint t-SNE of the group's tasks, coloured by task and by city).
"""
import logging
import os.path as osp
from itertools import combinations
from typing import Any, Dict, List, Optional

import numpy as np
from mmengine.logging import print_log

from .features import FeatureCollection
from .plots import plot_scree, plot_tsne
from .stats import components_for_variance, pca_scree, split_mmd, subset_mmd

__all__ = ['analyze_collection', 'format_table']

VARIANCE_FRACTION = 0.9


def _city_rows(cities: List[str]) -> Dict[str, np.ndarray]:
    """City name -> row indices, cities sorted by name."""
    arr = np.asarray(cities)
    return {city: np.nonzero(arr == city)[0] for city in sorted(set(cities))}


def _mmd_or_none(what: str, fn, *args, **kwargs) -> Optional[Dict[str, Any]]:
    """``fn(*args, **kwargs)``, or ``None`` with a warning when the groups are too small for a draw."""
    try:
        return fn(*args, **kwargs)
    except ValueError as error:
        print_log(f'{what}: skipped ({error})', logger='current', level=logging.WARNING)
        return None


def _feature_entry(name: str, values: np.ndarray, city_rows: Dict[str, np.ndarray], mmd_cfg: dict) -> dict:
    """MMD per city pair, reference MMD and PCA scree of one feature set ``[S, C]``."""
    city_mmd = {f'{a}~{b}': _mmd_or_none(f'{name} MMD {a} vs {b}', subset_mmd, values[city_rows[a]],
                                         values[city_rows[b]], **mmd_cfg)
                for a, b in combinations(city_rows, 2)}
    scree = pca_scree(values)
    return dict(dim=int(values.shape[1]), mean_norm=float(np.linalg.norm(values, axis=1).mean()),
                mean_std=float(values.std(axis=0).mean()), mmd_city=city_mmd,
                mmd_ref=_mmd_or_none(f'{name} reference MMD', split_mmd, values, **mmd_cfg),
                pca=dict(scree, components_90=components_for_variance(scree['cumulative'], VARIANCE_FRACTION)))


def _task_pairs(collection: FeatureCollection, mmd_cfg: dict) -> Dict[str, Any]:
    """``'<group>/<a>~<b>'`` -> MMD between two tasks' features of the same samples (equal widths only)."""
    pairs = {}
    for group, tasks in collection.groups().items():
        for a, b in combinations(tasks, 2):
            x, y = collection.features[f'{group}/{a}'], collection.features[f'{group}/{b}']
            if x.shape[1] == y.shape[1]:
                pairs[f'{group}/{a}~{b}'] = _mmd_or_none(f'{group} MMD {a} vs {b}', subset_mmd, x, y, **mmd_cfg)
    return pairs


def _figures(collection: FeatureCollection, out_dir: str, seed: int) -> Dict[str, str]:
    """``scree.png`` and one ``tsne_<group>.png`` per group of equal-width tasks; name -> path."""
    curves = {name: pca_scree(values)['explained_variance_ratio'] for name, values in collection.features.items()}
    paths = dict(scree=plot_scree(curves, osp.join(out_dir, 'scree.png'), title='PCA scree (explained variance)'))
    for group, tasks in collection.groups().items():
        feats = {task: collection.features[f'{group}/{task}'] for task in tasks}
        if len({value.shape[1] for value in feats.values()}) != 1:
            print_log(f't-SNE of {group}: skipped, the tasks have different widths '
                      f'{ {task: value.shape[1] for task, value in feats.items()} }', logger='current',
                      level=logging.WARNING)
            continue
        paths[f'tsne_{group}'] = plot_tsne(feats, collection.cities, osp.join(out_dir, f'tsne_{group}.png'),
                                           title=f't-SNE of {group}', seed=seed)['path']
    return paths


def analyze_collection(collection: FeatureCollection, out_dir: str, num_subsets: int = 10,
                       subset_size: Optional[int] = None, seed: int = 0) -> Dict[str, Any]:
    """MMD, PCA and t-SNE of every feature set; writes the PNGs into ``out_dir`` and returns the summary.

    Args:
        collection (FeatureCollection): features of ``S >= 4`` samples.
        out_dir (str): folder of ``scree.png`` and ``tsne_<group>.png`` (created).
        num_subsets (int): ``K`` random subset draws per MMD.
        subset_size (int, optional): rows per group and draw (default: half of the smaller group).
        seed (int): seed of the subset draws and of t-SNE.

    Returns:
        dict: ``num_samples``, ``cities`` (city -> sample count), ``settings`` (kernel, bandwidth, estimator,
        ``num_subsets``, ``subset_size``, ``seed``), ``features`` (name -> ``dim``, ``mean_norm``, ``mean_std``,
        ``mmd_city`` (pair ->
        ``dict(mean, std, values, subset_size, num_subsets)`` or ``None`` when a group is too small), ``mmd_ref``,
        ``pca``), ``mmd_task`` (pair -> same) and ``figures`` (name -> PNG path).
    """
    if len(collection.samples) < 4:
        raise ValueError(f'the analysis needs >= 4 samples, got {len(collection.samples)}')
    city_rows = _city_rows(collection.cities)
    mmd_cfg = dict(num_subsets=num_subsets, subset_size=subset_size, seed=seed)
    return dict(
        num_samples=len(collection.samples),
        cities={city: int(len(rows)) for city, rows in city_rows.items()},
        settings=dict(kernel='gaussian', bandwidth='median', estimator='unbiased', **mmd_cfg),
        features={name: _feature_entry(name, values, city_rows, mmd_cfg)
                  for name, values in collection.features.items()},
        mmd_task=_task_pairs(collection, mmd_cfg),
        figures=_figures(collection, out_dir, seed))


def _fmt(stat: Optional[Dict[str, Any]]) -> str:
    """``'mean +- std'`` with 4 decimals, ``'-'`` for a skipped statistic."""
    return '-' if stat is None else f'{stat["mean"]:.4f} +- {stat["std"]:.4f}'


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    """Left-aligned text columns with a rule under the header."""
    widths = [max(len(row[col]) for row in [header] + rows) for col in range(len(header))]
    lines = ['  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header] + rows]
    return [lines[0], '-' * max(len(line) for line in lines)] + lines[1:]


def format_table(summary: Dict[str, Any]) -> str:
    """Plain-text tables of :func:`analyze_collection`'s summary: one row per feature set, one per task pair."""
    pairs = sorted({pair for entry in summary['features'].values() for pair in entry['mmd_city']})
    header = (['feature set', 'dim', 'mean norm', 'std/dim'] + [f'MMD {pair}' for pair in pairs]
              + ['MMD ref (random halves)', 'PCA comps 90%'])
    rows = [[name, str(entry['dim']), f"{entry['mean_norm']:.4g}", f"{entry['mean_std']:.4g}"]
            + [_fmt(entry['mmd_city'].get(pair)) for pair in pairs]
            + [_fmt(entry['mmd_ref']), str(entry['pca']['components_90'])]
            for name, entry in summary['features'].items()]
    lines = _table(header, rows)
    if summary['mmd_task']:
        lines += [''] + _table(['task pair (same samples)', 'MMD'],
                               [[pair, _fmt(stat)] for pair, stat in summary['mmd_task'].items()])
    return '\n'.join(lines)
