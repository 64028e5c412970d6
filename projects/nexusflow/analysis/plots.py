"""PNG figures of the feature analysis: PCA scree curves and t-SNE maps coloured by task and by city.

Figures are drawn with matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``): no pyplot state,
no display, safe in worker processes and tests. t-SNE is scikit-learn's ``TSNE`` with a fixed ``random_state``.
Both libraries are imported inside the functions that use them: no module of the plugin imports either when it is
imported (mmdet may still load them on its own).
"""
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from .mmd import ArrayLike, as_matrix

__all__ = ['plot_scree', 'tsne_embedding', 'plot_tsne']

MARKERS = ('o', '^', 's', 'D', 'v', 'P', 'X', '*')


def _save(fig, path: str) -> str:
    """Write ``fig`` (a matplotlib ``Figure``) as a PNG at ``path`` (folders created); returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format='png', dpi=100)
    return path


def plot_scree(curves: Mapping[str, Sequence[float]], path: str, title: str = 'PCA scree',
               log_scale: bool = True) -> str:
    """Explained variance per principal component, one curve per feature set.

    Args:
        curves (Mapping[str, Sequence[float]]): feature-set name -> ``explained_variance_ratio`` of
            :func:`~.stats.pca_scree` (values in ``[0, 1]``, decreasing), drawn in mapping order.
        path (str): output PNG path.
        title (str): figure title.
        log_scale (bool): logarithmic y axis (the decay is easier to compare).

    Returns:
        str: ``path``.
    """
    if not curves:
        raise ValueError('plot_scree needs at least one curve')
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    for name, ratios in curves.items():
        ratios = np.asarray(ratios, dtype=np.float64)
        ax.plot(np.arange(1, len(ratios) + 1), ratios, marker='.', label=name)
    if log_scale:
        ax.set_yscale('log')
    ax.set_xlabel('principal component')
    ax.set_ylabel('explained variance ratio')
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize='small')
    fig.tight_layout()
    return _save(fig, path)


def tsne_embedding(features: ArrayLike, seed: int = 0, perplexity: Optional[float] = None) -> np.ndarray:
    """2-D t-SNE of ``features`` ``[n, d]`` (``n >= 3``) -> ``[n, 2]`` float64, deterministic for a ``seed``.

    ``perplexity`` defaults to ``min(30, (n - 1) / 3)`` (scikit-learn requires it below ``n``); the embedding is
    initialised by PCA. The OpenMP gradient runs on one thread: a multi-threaded sum is not bit-reproducible, and
    scikit-learn's OpenMP runtime next to torch's can stall on an oversubscribed CPU.
    """
    mat = as_matrix(features, 'features').numpy()
    if len(mat) < 3:
        raise ValueError(f't-SNE needs >= 3 points, got {len(mat)}')
    perplexity = min(30.0, (len(mat) - 1) / 3.0) if perplexity is None else float(perplexity)
    if not 0 < perplexity < len(mat):
        raise ValueError(f'perplexity must lie in (0, {len(mat)}) for {len(mat)} points, got {perplexity}')
    from sklearn.manifold import TSNE
    tsne = TSNE(n_components=2, perplexity=perplexity, init='pca', random_state=seed)
    with threadpool_limits(limits=1, user_api='openmp'):
        return tsne.fit_transform(mat).astype(np.float64)


def _scatter(ax, points: np.ndarray, colour_keys: List[str], marker_keys: List[str], legend_title: str) -> None:
    """Scatter ``points`` ``[n, 2]``: colour by ``colour_keys``, marker by ``marker_keys`` (sorted, stable)."""
    colours = {key: f'C{index % 10}' for index, key in enumerate(sorted(set(colour_keys)))}
    markers = {key: MARKERS[index % len(MARKERS)] for index, key in enumerate(sorted(set(marker_keys)))}
    colour_arr, marker_arr = np.asarray(colour_keys), np.asarray(marker_keys)
    for colour_key, colour in colours.items():
        for marker_key, marker in markers.items():
            rows = (colour_arr == colour_key) & (marker_arr == marker_key)
            if rows.any():
                ax.scatter(points[rows, 0], points[rows, 1], s=14, c=colour, marker=marker, alpha=0.8,
                           label=f'{colour_key} / {marker_key}')
    ax.legend(fontsize='x-small', title=legend_title, title_fontsize='x-small')
    ax.set_xticks([])
    ax.set_yticks([])


def plot_tsne(features: Mapping[str, ArrayLike], cities: Sequence[str], path: str, title: str = 't-SNE',
              seed: int = 0, perplexity: Optional[float] = None) -> Dict[str, object]:
    """One joint t-SNE of the features of several tasks over the same samples, drawn twice: by task and by city.

    Args:
        features (Mapping[str, array-like]): task name -> ``[S, d]`` features of the same ``S`` samples (same
            ``d`` for every task: they are embedded together).
        cities (Sequence[str]): ``S`` city names (e.g. ``'boston'``, ``'singapore'``), the sample order of
            ``features``.
        path (str): output PNG path.
        title (str): figure title.
        seed (int): t-SNE ``random_state``.
        perplexity (float, optional): see :func:`tsne_embedding`.

    Returns:
        dict: ``path`` (str), ``points`` (``[T * S, 2]`` float64 embedding, tasks stacked in mapping order),
        ``tasks`` and ``cities`` (``T * S`` labels of the rows).
    """
    mats = {name: as_matrix(value, name).numpy() for name, value in features.items()}
    if not mats:
        raise ValueError('plot_tsne needs the features of at least one task')
    dims = {name: mat.shape for name, mat in mats.items()}
    if len({shape for shape in dims.values()}) != 1 or next(iter(dims.values()))[0] != len(cities):
        raise ValueError(f'every task needs [S, d] features of the same S = {len(cities)} samples and the same d, '
                         f'got {dims}')
    points = tsne_embedding(np.concatenate(list(mats.values())), seed=seed, perplexity=perplexity)
    from matplotlib.figure import Figure
    task_keys = [name for name in mats for _ in range(len(cities))]
    city_keys = [str(city) for _ in mats for city in cities]
    fig = Figure(figsize=(10.0, 4.6))
    by_task, by_city = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _scatter(by_task, points, task_keys, city_keys, 'task / city')
    by_task.set_title('coloured by task')
    _scatter(by_city, points, city_keys, task_keys, 'city / task')
    by_city.set_title('coloured by city')
    fig.suptitle(title)
    fig.tight_layout()
    return dict(path=_save(fig, path), points=points, tasks=task_keys, cities=city_keys)
