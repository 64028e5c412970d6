"""Statistics of feature sets for the papers' analysis: MMD over random equal-size subsets, PCA scree.

- :func:`subset_mmd`: the squared MMD between two groups (e.g. Boston vs Singapore samples, or the track vs map
  features of the same samples), mean and standard deviation over ``K`` random draws of equal-size subsets, as in the
  papers' Table 1 (``1.56 +- 0.47``). The papers state neither the kernel nor the subset size; the defaults are the
  Gaussian kernel with the median-heuristic bandwidth of every draw (:func:`~.mmd.mmd`), the unbiased estimator and
  half of the smaller group.
- :func:`split_mmd`: the same figure for two disjoint random halves of *one* set, a same-distribution floor
  (the likely meaning of the papers' "Ref" column).
- :func:`pca_scree`: eigenvalues of the sample covariance and the explained variance per component (the scree plot
  of the papers' Figure 4: slower decay = more informative dimensions).

Every draw comes from ``numpy.random.default_rng(seed)``: the same inputs and seed give the same figures.
"""
from typing import Dict, List, Optional

import numpy as np

from .mmd import ArrayLike, as_matrix, mmd

__all__ = ['subset_mmd', 'split_mmd', 'pca_scree', 'components_for_variance']


def _summary(values: List[float], subset_size: int) -> Dict[str, object]:
    """``dict(mean, std, values, subset_size, num_subsets)``; ``std`` is the population std (``ddof=0``)."""
    arr = np.asarray(values, dtype=np.float64)
    return dict(mean=float(arr.mean()), std=float(arr.std()), values=[float(v) for v in arr],
                subset_size=int(subset_size), num_subsets=len(values))


def _check_draws(num_subsets: int, subset_size: int, available: int, what: str) -> None:
    """``ValueError`` unless ``num_subsets >= 1`` and ``2 <= subset_size <= available``."""
    if num_subsets < 1:
        raise ValueError(f'num_subsets must be >= 1, got {num_subsets}')
    if not 2 <= subset_size <= available:
        raise ValueError(f'subset_size must lie in [2, {available}] ({what}), got {subset_size}; pass a smaller '
                         'subset_size or collect more samples')


def subset_mmd(x: ArrayLike, y: ArrayLike, num_subsets: int = 10, subset_size: Optional[int] = None,
               seed: int = 0, kernel: str = 'gaussian', bandwidth='median',
               unbiased: bool = True) -> Dict[str, object]:
    """Squared MMD between ``x`` and ``y`` over ``num_subsets`` random pairs of equal-size subsets.

    Draw ``k`` takes ``subset_size`` rows of ``x`` and ``subset_size`` rows of ``y``, each without replacement, and
    evaluates :func:`~.mmd.mmd` on them (the median bandwidth is recomputed per draw).

    Args:
        x (array-like): ``[n, d]`` float features of the first group (``n >= 2``).
        y (array-like): ``[m, d]`` float features of the second group (``m >= 2``), same ``d``.
        num_subsets (int): ``K >= 1`` draws.
        subset_size (int, optional): rows per group and draw, in ``[2, min(n, m)]``; default
            ``max(2, min(n, m) // 2)``.
        seed (int): seed of the draws.
        kernel (str): ``'gaussian'``, ``'laplacian'`` or ``'linear'`` (see :func:`~.mmd.mmd`).
        bandwidth (str | float | Sequence[float]): ``'median'`` or explicit bandwidth(s), in feature units.
        unbiased (bool): U-statistic (default; ~0 and possibly negative for one distribution) or V-statistic.

    Returns:
        dict: ``mean`` and ``std`` (float, kernel units, population std over the draws), ``values`` (``K`` floats
        in draw order), ``subset_size`` (int), ``num_subsets`` (int).
    """
    x, y = as_matrix(x, 'x'), as_matrix(y, 'y')
    size = max(2, min(len(x), len(y)) // 2) if subset_size is None else int(subset_size)
    _check_draws(num_subsets, size, min(len(x), len(y)), f'groups of {len(x)} and {len(y)} rows')
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        rows_x = np.sort(rng.choice(len(x), size=size, replace=False))
        rows_y = np.sort(rng.choice(len(y), size=size, replace=False))
        values.append(mmd(x[rows_x], y[rows_y], kernel=kernel, bandwidth=bandwidth, unbiased=unbiased))
    return _summary(values, size)


def split_mmd(x: ArrayLike, num_subsets: int = 10, subset_size: Optional[int] = None, seed: int = 0,
              kernel: str = 'gaussian', bandwidth='median', unbiased: bool = True) -> Dict[str, object]:
    """Squared MMD between two disjoint random subsets of one set (a same-distribution reference).

    Args:
        x (array-like): ``[n, d]`` float features, ``n >= 4``.
        num_subsets (int): ``K >= 1`` random splits.
        subset_size (int, optional): rows per half, in ``[2, n // 2]``; default ``n // 2``.
        seed (int): seed of the splits.
        kernel, bandwidth, unbiased: as in :func:`subset_mmd`.

    Returns:
        dict: as :func:`subset_mmd`.
    """
    x = as_matrix(x, 'x')
    size = len(x) // 2 if subset_size is None else int(subset_size)
    _check_draws(num_subsets, size, len(x) // 2, f'two disjoint halves of {len(x)} rows')
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        order = rng.permutation(len(x))
        first, second = np.sort(order[:size]), np.sort(order[size:2 * size])
        values.append(mmd(x[first], x[second], kernel=kernel, bandwidth=bandwidth, unbiased=unbiased))
    return _summary(values, size)


def pca_scree(x: ArrayLike, max_components: Optional[int] = None) -> Dict[str, List[float]]:
    """Principal-component spectrum of ``x``: the data of a scree plot.

    The eigenvalues of the sample covariance (``ddof=1``) come from the singular values ``s`` of the centred data:
    ``lambda_k = s_k^2 / (n - 1)``, in decreasing order. At most ``min(n - 1, d)`` components carry variance.

    Args:
        x (array-like): ``[n, d]`` float features, ``n >= 2``.
        max_components (int, optional): keep the first ``max_components`` components (default all
            ``min(n - 1, d)``).

    Returns:
        dict: ``eigenvalues`` (variance per component, squared feature units), ``explained_variance_ratio``
        (``lambda_k / sum(lambda)``, in ``[0, 1]``, over *all* components even when truncated) and ``cumulative``
        (running sum of the ratios); lists of floats of equal length.

    Raises:
        ValueError: fewer than 2 rows, or zero total variance (all rows equal).
    """
    mat = as_matrix(x, 'x').numpy()
    if len(mat) < 2:
        raise ValueError(f'PCA needs >= 2 rows, got {len(mat)}')
    centred = mat - mat.mean(axis=0, keepdims=True)
    singular = np.linalg.svd(centred, compute_uv=False)[:min(len(mat) - 1, mat.shape[1])]
    eigenvalues = singular**2 / (len(mat) - 1)
    total = eigenvalues.sum()
    if total <= 0:
        raise ValueError('PCA: the features have zero variance (all rows are equal)')
    keep = len(eigenvalues) if max_components is None else max(1, int(max_components))
    ratio = eigenvalues / total
    return dict(eigenvalues=[float(v) for v in eigenvalues[:keep]],
                explained_variance_ratio=[float(v) for v in ratio[:keep]],
                cumulative=[float(v) for v in np.cumsum(ratio)[:keep]])


def components_for_variance(cumulative: List[float], fraction: float = 0.9) -> int:
    """Smallest number of leading components whose cumulative explained variance reaches ``fraction``.

    Args:
        cumulative (list[float]): ``pca_scree(...)['cumulative']``.
        fraction (float): target in ``(0, 1]``.

    Returns:
        int: in ``[1, len(cumulative)]``; ``len(cumulative)`` when the target is not reached (truncated spectrum).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f'fraction must lie in (0, 1], got {fraction}')
    reached = np.nonzero(np.asarray(cumulative) >= fraction - 1e-12)[0]
    return int(reached[0]) + 1 if len(reached) else len(cumulative)
