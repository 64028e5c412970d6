"""Find and check the ``.npy`` files of a preprocessed NYUv2 split (``root/<split>/<folder>/<i>.npy``).

Every error names the offending file, the layout that was expected and what to do.
"""
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..meta import ARRAY_FOLDERS, ARRAY_LAYOUTS

PREPARE_HINT = ('prepare the data as in projects/nexusflow/nyuv2/README.md (the preprocessed NYUv2 of MTAN, or '
                '`python tools/create_data.py nyuv2-synthetic --out-dir <root>`)')
_INDEX_FILE = re.compile(r'^(\d+)\.npy$')
# data-info key of each folder's file path
PATH_KEYS = {'image': 'img_path', 'label': 'label_path', 'depth': 'depth_path', 'normal': 'normal_path'}


def expected_shape(folder: str, height: int, width: int) -> Tuple[int, ...]:
    """Array shape of ``folder`` (``image``, ``label``, ``depth``, ``normal``) for an ``H x W`` image."""
    return {'image': (height, width, 3), 'label': (height, width), 'depth': (height, width, 1),
            'normal': (height, width, 3)}[folder]


def split_file_paths(split_dir: str) -> List[Dict[str, str]]:
    """Paths of every sample of a split, in index order: ``[{'img_path', 'label_path', 'depth_path',
    'normal_path'}]``.

    Raises:
        FileNotFoundError: the split or one of its four folders is missing, or a folder lacks an index that
            another folder has (the message names the first missing file).
        ValueError: a folder holds no ``<i>.npy`` file, or the indices are not ``0 .. N-1``.
    """
    if not osp.isdir(split_dir):
        raise FileNotFoundError(f'NYUv2 split folder {split_dir} does not exist; {PREPARE_HINT}')
    indices = {}
    for folder in ARRAY_FOLDERS:
        path = osp.join(split_dir, folder)
        if not osp.isdir(path):
            raise FileNotFoundError(f'NYUv2 folder {path} is missing: a split needs the sub-folders '
                                    f'{list(ARRAY_FOLDERS)}; {PREPARE_HINT}')
        indices[folder] = {int(m.group(1)) for m in map(_INDEX_FILE.match, os.listdir(path)) if m}
    all_indices = set().union(*indices.values())
    if not all_indices:
        raise ValueError(f'NYUv2 split {split_dir} holds no <i>.npy files; {PREPARE_HINT}')
    num = max(all_indices) + 1
    for folder in ARRAY_FOLDERS:
        missing = sorted(set(range(num)) - indices[folder])
        if missing:
            raise FileNotFoundError(f'NYUv2 file {osp.join(split_dir, folder, f"{missing[0]}.npy")} is missing '
                                    f'({len(missing)} missing in {folder}/): every folder must hold 0.npy .. '
                                    f'{num - 1}.npy')
    return [{PATH_KEYS[folder]: osp.join(split_dir, folder, f'{i}.npy') for folder in ARRAY_FOLDERS}
            for i in range(num)]


def check_array(array: np.ndarray, path: str, folder: str, image_hw: Optional[Tuple[int, int]] = None) -> None:
    """Raise ``ValueError`` unless ``array`` has the layout of ``folder`` (and the image size ``image_hw``).

    Args:
        array (np.ndarray): the loaded (or memory-mapped) array.
        path (str): its file, for the message.
        folder (str): ``'image'``, ``'label'``, ``'depth'`` or ``'normal'``.
        image_hw (tuple, optional): ``(H, W)`` that the array must match.
    """
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f'NYUv2 file {path}: expected a numeric {folder} array, got dtype {array.dtype}')
    height, width = image_hw if image_hw is not None else array.shape[:2]
    shape = expected_shape(folder, height, width)
    if array.shape != shape:
        raise ValueError(f'NYUv2 file {path}: expected a {folder} array of shape {ARRAY_LAYOUTS[folder]} = {shape}'
                         f'{"" if image_hw is None else " (the image size of the split)"}, got {array.shape}')


def check_split_headers(paths: List[Dict[str, str]], image_hw: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """Check the shape and dtype of every file of a split from its ``.npy`` header (no pixel is read).

    Args:
        paths (list[dict]): :func:`split_file_paths` output.
        image_hw (tuple, optional): required ``(H, W)``; default the size of ``image/0.npy``.

    Returns:
        tuple[int, int]: the split's ``(H, W)``.
    """
    for sample in paths:
        if image_hw is None:
            image = np.load(sample['img_path'], mmap_mode='r')
            check_array(image, sample['img_path'], 'image')
            image_hw = image.shape[:2]
        for folder, key in PATH_KEYS.items():
            check_array(np.load(sample[key], mmap_mode='r'), sample[key], folder, image_hw)
    return image_hw
