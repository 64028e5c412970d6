"""Partial-label protocols for NYUv2: which task labels each training image keeps.

A protocol yields a bool label mask ``[N, 3]`` (rows = training images in index order, columns = ``TASKS`` =
seg, depth, normal; ``True`` = labelled). All are deterministic functions of their ``seed``.

- ``'full'``: every label kept (full supervision).
- ``'cluster'`` (NexusFlow N-task paper, Sec. 4.2): the training images are clustered into three subsets of equal
  size (+-1) and each subset keeps exactly one task. The paper states neither features nor algorithm; ours:

  * features (:func:`cluster_features`): the square root of a joint RGB colour histogram with 4 bins per channel
    (64-d, unit L2 norm; the Hellinger embedding, so Euclidean distances compare histograms) concatenated with a
    6 x 8 area-downsampled luminance thumbnail divided by ``sqrt(48)`` (48-d, norm <= 1): colour/lighting of the
    room and its coarse layout weigh about equally;
  * algorithm (:func:`balanced_kmeans`): k-means (k = 3, k-means++ seeding, ``n_init`` restarts from one seeded
    generator, the lowest inertia wins), then balanced refinement: alternate an exact minimum-cost assignment of
    the images to the clusters with capacities ``N // 3`` (+1 for the first ``N % 3`` clusters) -- the Hungarian
    algorithm on the centroid distances with each centroid repeated ``capacity`` times -- and a centroid update,
    until the assignment is stable;
  * clusters take the tasks in the order of their smallest image index (the cluster of image 0 keeps seg).
- ``'onelabel'`` (MTPSL): exactly one label per image, per-task counts equal (+-1; 265 / 265 / 265 for 795).
- ``'randomlabels'`` (MTPSL): one or two labels per image with MTPSL's statistics (405 images with one label and 390
  with two out of 795, per task about a third each): ``round(N * 390 / 795)`` images keep two labels, the missing
  task cycles over the tasks; the others keep one label, cycling over the tasks; then both groups are shuffled.
- a mask file (:func:`load_label_mask`): MTPSL's ``onelabel.pth`` / ``randomlabels.pth`` (``{'labels_weights':
  FloatTensor [795, 3]}``) or a ``.npy`` ``[N, 3]`` array, to reproduce a published split exactly.
"""
import os.path as osp
from typing import Dict, Optional

import cv2
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .meta import TASKS

PROTOCOLS = ('full', 'cluster', 'onelabel', 'randomlabels')
# MTPSL's randomlabels.pth: 390 of its 795 images keep two labels
MTPSL_TWO_LABEL_FRACTION = 390 / 795
NUM_TASKS = len(TASKS)


def full_mask(num_images: int) -> np.ndarray:
    """Every label kept: bool ``[N, 3]`` of ones."""
    return np.ones((num_images, NUM_TASKS), dtype=bool)


def onelabel_mask(num_images: int, seed: int = 0) -> np.ndarray:
    """Exactly one label per image, each task on ``N // 3`` or ``N // 3 + 1`` images: bool ``[N, 3]``."""
    rng = np.random.default_rng(seed)
    tasks = rng.permutation(np.arange(num_images) % NUM_TASKS)
    return np.eye(NUM_TASKS, dtype=bool)[tasks]


def randomlabels_mask(num_images: int, seed: int = 0,
                      two_label_fraction: float = MTPSL_TWO_LABEL_FRACTION) -> np.ndarray:
    """One or two labels per image (never zero or three), tasks balanced: bool ``[N, 3]``.

    Args:
        num_images (int): ``N``.
        seed (int): seed of the shuffles.
        two_label_fraction (float): share of images with two labels, in ``[0, 1]`` (MTPSL: 390 / 795).
    """
    if not 0.0 <= two_label_fraction <= 1.0:
        raise ValueError(f'two_label_fraction must lie in [0, 1], got {two_label_fraction}')
    rng = np.random.default_rng(seed)
    num_two = int(round(num_images * two_label_fraction))
    mask = np.zeros((num_images, NUM_TASKS), dtype=bool)
    order = rng.permutation(num_images)
    two, one = order[:num_two], order[num_two:]
    mask[two] = True
    mask[two, rng.permutation(np.arange(num_two) % NUM_TASKS)] = False
    mask[one, rng.permutation(np.arange(len(one)) % NUM_TASKS)] = True
    return mask


def cluster_features(image: np.ndarray, bins: int = 4, thumb_shape: tuple = (6, 8)) -> np.ndarray:
    """Clustering descriptor of one image (see the module docstring).

    Args:
        image (np.ndarray): float ``[H, W, 3]`` RGB in ``[0, 1]`` (values outside are clipped).
        bins (int): histogram bins per channel.
        thumb_shape (tuple): ``(rows, cols)`` of the luminance thumbnail.

    Returns:
        np.ndarray: float64 ``[bins ** 3 + rows * cols]``.
    """
    img = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    quant = np.minimum((img * bins).astype(np.int64), bins - 1)
    codes = (quant[..., 0] * bins + quant[..., 1]) * bins + quant[..., 2]
    hist = np.bincount(codes.ravel(), minlength=bins**3) / codes.size
    luma = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    thumb = cv2.resize(luma, (thumb_shape[1], thumb_shape[0]), interpolation=cv2.INTER_AREA)
    return np.concatenate([np.sqrt(hist), thumb.ravel().astype(np.float64) / np.sqrt(thumb.size)])


def _sq_dists(features: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``[N, k]``."""
    return ((features[:, None, :] - centers[None, :, :])**2).sum(-1)


def _kmeans_pp(features: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: ``[k, F]`` initial centres."""
    centers = [features[rng.integers(len(features))]]
    for _ in range(1, k):
        d2 = _sq_dists(features, np.stack(centers)).min(axis=1)
        probs = d2 / d2.sum() if d2.sum() > 0 else np.full(len(features), 1.0 / len(features))
        centers.append(features[rng.choice(len(features), p=probs)])
    return np.stack(centers)


def _lloyd(features: np.ndarray, centers: np.ndarray, max_iter: int) -> tuple:
    """Plain k-means from ``centers``: ``(assignment [N], centers [k, F], inertia)``."""
    for _ in range(max_iter):
        assign = _sq_dists(features, centers).argmin(axis=1)
        new = np.stack([features[assign == c].mean(0) if np.any(assign == c) else centers[c]
                        for c in range(len(centers))])
        if np.allclose(new, centers):
            break
        centers = new
    d2 = _sq_dists(features, centers)
    assign = d2.argmin(axis=1)
    return assign, centers, float(d2[np.arange(len(features)), assign].sum())


def _balanced_assign(features: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Minimum-cost assignment with cluster sizes ``N // k`` (+1 for the first ``N % k``): ``[N]``."""
    num, k = len(features), len(centers)
    capacity = [num // k + int(c < num % k) for c in range(k)]
    slots = np.repeat(np.arange(k), capacity)
    rows, cols = linear_sum_assignment(_sq_dists(features, centers)[:, slots])
    assign = np.empty(num, dtype=np.int64)
    assign[rows] = slots[cols]
    return assign


def balanced_kmeans(features: np.ndarray, num_clusters: int = NUM_TASKS, seed: int = 0, n_init: int = 10,
                    max_iter: int = 100) -> np.ndarray:
    """Cluster ``features`` ``[N, F]`` into ``num_clusters`` groups of equal size (+-1): int64 ``[N]``.

    Deterministic for a given ``seed`` (one ``numpy`` generator drives every k-means++ restart).
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < num_clusters:
        raise ValueError(f'balanced_kmeans needs features [N, F] with N >= {num_clusters}, got shape '
                         f'{features.shape}')
    rng = np.random.default_rng(seed)
    runs = [_lloyd(features, _kmeans_pp(features, num_clusters, rng), max_iter) for _ in range(n_init)]
    _, centers, _ = min(runs, key=lambda run: run[2])
    assign = _balanced_assign(features, centers)
    for _ in range(max_iter):
        centers = np.stack([features[assign == c].mean(0) for c in range(num_clusters)])
        new = _balanced_assign(features, centers)
        if np.array_equal(new, assign):
            break
        assign = new
    return assign


def cluster_mask(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """The ``'cluster'`` protocol: bool ``[N, 3]``, one task per balanced cluster (order of first member)."""
    assign = balanced_kmeans(features, NUM_TASKS, seed)
    first_member = [int(np.flatnonzero(assign == c)[0]) for c in range(NUM_TASKS)]
    task_of_cluster = np.argsort(np.argsort(first_member))
    return np.eye(NUM_TASKS, dtype=bool)[task_of_cluster[assign]]


def load_label_mask(path: str, num_images: int) -> np.ndarray:
    """Read a label mask file: MTPSL ``.pth`` (``{'labels_weights': [N, 3]}``) or ``.npy`` ``[N, 3]``.

    Returns:
        np.ndarray: bool ``[N, 3]`` (non-zero = labelled).

    Raises:
        FileNotFoundError: no such file. ValueError: unknown suffix, wrong shape or values other than 0 / 1.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'label mask file {path} does not exist (MTPSL ships data/nyuv2_settings/'
                                'onelabel.pth and randomlabels.pth)')
    if path.endswith(('.pth', '.pt')):
        content = torch.load(path, map_location='cpu', weights_only=True)
        if not isinstance(content, dict) or 'labels_weights' not in content:
            raise ValueError(f'{path}: expected a dict with key "labels_weights" (MTPSL format), got '
                             f'{sorted(content) if isinstance(content, dict) else type(content).__name__}')
        values = content['labels_weights'].numpy()
    elif path.endswith('.npy'):
        values = np.load(path)
    else:
        raise ValueError(f'label mask file {path}: expected a .pth/.pt (MTPSL) or .npy file')
    if values.shape != (num_images, NUM_TASKS):
        raise ValueError(f'{path}: expected a mask of shape ({num_images}, {NUM_TASKS}) (images x {TASKS}), '
                         f'got {values.shape}')
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f'{path}: mask values must be 0 or 1, got {np.unique(values)[:10]}')
    return values.astype(bool)


def label_counts(mask: np.ndarray) -> Dict[str, int]:
    """Labelled images per task and images per number of labels, e.g. ``{'seg': 265, ..., 'with_1': 795}``."""
    counts = {task: int(n) for task, n in zip(TASKS, mask.sum(axis=0))}
    per_image = np.bincount(mask.sum(axis=1), minlength=NUM_TASKS + 1)
    counts.update({f'with_{k}': int(per_image[k]) for k in range(NUM_TASKS + 1)})
    return counts


def protocol_mask(protocol: str, num_images: int, seed: int = 0, features: Optional[np.ndarray] = None,
                  mask_file: Optional[str] = None) -> np.ndarray:
    """Label mask ``[N, 3]`` of ``protocol`` (or of ``mask_file`` when given, which overrides the protocol).

    Args:
        protocol (str): one of :data:`PROTOCOLS`.
        num_images (int): ``N``.
        seed (int): seed of the protocol.
        features (np.ndarray, optional): ``[N, F]`` :func:`cluster_features`, needed by ``'cluster'``.
        mask_file (str, optional): a file for :func:`load_label_mask`.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f'unknown label protocol {protocol!r}; expected one of {PROTOCOLS}')
    if mask_file is not None:
        mask = load_label_mask(mask_file, num_images)
    elif protocol == 'cluster':
        if features is None or len(features) != num_images:
            raise ValueError(f"protocol 'cluster' needs features [N={num_images}, F], got "
                             f'{None if features is None else np.shape(features)}')
        mask = cluster_mask(features, seed)
    elif protocol == 'onelabel':
        mask = onelabel_mask(num_images, seed)
    elif protocol == 'randomlabels':
        mask = randomlabels_mask(num_images, seed)
    else:
        mask = full_mask(num_images)
    missing = [task for task, n in zip(TASKS, mask.sum(axis=0)) if n == 0]
    if num_images and missing:
        raise ValueError(f'label protocol {protocol!r} leaves no labelled image for {missing} out of {num_images} '
                         'images; use more images or another protocol')
    return mask
