"""Maximum mean discrepancy (Gretton et al., JMLR 2012) between two sets of feature vectors.

Used to reproduce the papers' alignment analysis: the squared MMD between the NexusFlow latents of map-annotated
and track-annotated samples (nuScenes), or between pairs of the seg/depth/normal subsets (NYUv2). The papers do
not state their kernel; the default here is a Gaussian kernel with the median-heuristic bandwidth; a sequence of
bandwidths gives the sum of those kernels (the multi-kernel variant common in domain adaptation code).
"""
from typing import Sequence, Union

import numpy as np
import torch
from torch import Tensor

KERNELS = ('gaussian', 'laplacian', 'linear')
ArrayLike = Union[np.ndarray, Tensor, Sequence[Sequence[float]]]


def as_matrix(x: ArrayLike, name: str) -> Tensor:
    """``[n, d]`` float64 CPU tensor from an array-like, with a ``ValueError`` for other shapes."""
    mat = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x), dtype=torch.float64)
    if mat.dim() != 2 or mat.shape[0] < 1:
        raise ValueError(f'{name} must be [n, d] with n >= 1, got shape {tuple(mat.shape)}')
    return mat


def median_distance(pooled: Tensor) -> float:
    """Median (lower middle) distance between distinct rows of ``pooled`` ``[N, d]`` (the median heuristic)."""
    dist = torch.cdist(pooled, pooled)
    upper = torch.ones_like(dist, dtype=torch.bool).triu(diagonal=1)
    median = float(dist[upper].median()) if len(pooled) > 1 else 0.0
    if median <= 0:
        raise ValueError('median heuristic: all points coincide, pass an explicit bandwidth')
    return median


def kernel_matrix(a: Tensor, b: Tensor, kernel: str, bandwidths: Sequence[float]) -> Tensor:
    """``[n, m]`` kernel values between rows of ``a`` ``[n, d]`` and ``b`` ``[m, d]``, summed over bandwidths."""
    if kernel == 'linear':
        return a @ b.T
    dist = torch.cdist(a, b)
    if kernel == 'gaussian':
        return sum(torch.exp(-dist.pow(2) / (2.0 * bw**2)) for bw in bandwidths)
    return sum(torch.exp(-dist / bw) for bw in bandwidths)


def mean_kernel(k: Tensor, exclude_diagonal: bool) -> Tensor:
    """Mean of a square kernel block, optionally without its diagonal (the U-statistic terms)."""
    if not exclude_diagonal:
        return k.mean()
    n = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def mmd(x: ArrayLike, y: ArrayLike, kernel: str = 'gaussian',
        bandwidth: Union[str, float, Sequence[float]] = 'median', unbiased: bool = True) -> float:
    """Squared MMD between samples ``x`` ``[n, d]`` and ``y`` ``[m, d]`` (float64 on the CPU).

    ``MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y)``. The unbiased estimator (U-statistic) drops the diagonal of
    the ``xx`` and ``yy`` blocks: it is ~0 (and may be slightly negative) for two samples of one distribution; the
    biased one (V-statistic) keeps it and is ``>= 0``. With the linear kernel the biased value is exactly
    ``||mean(x) - mean(y)||^2``. Memory and time are ``O((n + m)^2)``.

    Args:
        x (array-like): ``[n, d]`` first sample (``n >= 2`` when ``unbiased``).
        y (array-like): ``[m, d]`` second sample, same ``d``.
        kernel (str): ``'gaussian'`` ``exp(-||a-b||^2 / (2 s^2))``, ``'laplacian'`` ``exp(-||a-b|| / s)`` or
            ``'linear'`` ``<a, b>``.
        bandwidth (str | float | Sequence[float]): ``s``; ``'median'`` = median distance between distinct points
            of the pooled sample; a sequence sums one kernel per value. Ignored by ``'linear'``.
        unbiased (bool): U-statistic (default) or V-statistic.

    Returns:
        float: the squared MMD estimate, in kernel units.
    """
    if kernel not in KERNELS:
        raise ValueError(f'kernel must be one of {KERNELS}, got {kernel!r}')
    x, y = as_matrix(x, 'x'), as_matrix(y, 'y')
    if x.shape[1] != y.shape[1]:
        raise ValueError(f'x and y must have the same feature size, got {x.shape[1]} and {y.shape[1]}')
    if unbiased and min(len(x), len(y)) < 2:
        raise ValueError(f'the unbiased estimator needs >= 2 points per sample, got {len(x)} and {len(y)}')
    if bandwidth == 'median':
        bandwidths = [median_distance(torch.cat([x, y]))]
    else:
        bandwidths = [float(b) for b in (bandwidth if isinstance(bandwidth, (list, tuple)) else [bandwidth])]
        if not bandwidths or min(bandwidths) <= 0:
            raise ValueError(f"bandwidth must be 'median', a positive number or a list of them, got {bandwidth!r}")
    k_xx = mean_kernel(kernel_matrix(x, x, kernel, bandwidths), unbiased)
    k_yy = mean_kernel(kernel_matrix(y, y, kernel, bandwidths), unbiased)
    k_xy = kernel_matrix(x, y, kernel, bandwidths).mean()
    return float(k_xx + k_yy - 2.0 * k_xy)
