"""Check a nuScenes-format data root (real or synthetic) before training on it.

``verify_nuscenes_root`` reads ``<root>/<version>/sample_data.json`` and checks every key-frame camera image it
references: the file exists, decodes completely (``image_io.decode_image``) and has the ``(height, width)`` the
table records; key-frame LiDAR files must exist. Every info pkl ``<root>/*_infos_temporal_*.pkl`` must load and
reference only existing images. All problems are collected and reported together.
"""
import glob
import json
import os.path as osp
from typing import Dict, List

import mmengine

from .image_io import CorruptImageError, decode_image

__all__ = ['DatasetCheckError', 'load_info_file', 'verify_nuscenes_root']

IMAGE_FORMATS = ('jpg', 'jpeg', 'png')


class DatasetCheckError(ValueError):
    """A dataset file is missing, corrupt or inconsistent with the tables."""


def load_info_file(path: str) -> dict:
    """``mmengine.load(path)``, with an error naming the file and the fix when it is not a readable info pkl."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'info file {path} not found; create it with tools/create_data.py nuscenes ...')
    try:
        return mmengine.load(path)
    except Exception as err:  # pickle raises many types for a corrupt file (EOFError, UnpicklingError, ...)
        raise DatasetCheckError(
            f'info file {path} could not be read ({type(err).__name__}: {err}); it is truncated or not an info '
            f'pkl. Recreate it: python tools/create_data.py nuscenes --root-path <data_root> --version <version> '
            f'--out-dir <data_root> --overwrite') from err


def verify_nuscenes_root(root: str, version: str, max_report: int = 20) -> Dict[str, int]:
    """Check the files of ``root`` (see the module docstring).

    Returns:
        dict: ``images``, ``lidar`` and ``infos`` counts of the checked files.

    Raises:
        DatasetCheckError: listing up to ``max_report`` problems (and their total count).
    """
    table = osp.join(root, version, 'sample_data.json')
    if not osp.isfile(table):
        raise FileNotFoundError(f'{table} not found; check --root-path and --version')
    with open(table) as f:
        records = [r for r in json.load(f) if r.get('is_key_frame', True)]
    problems: List[str] = []
    counts = dict(images=0, lidar=0, infos=0)
    for rec in records:
        path = osp.join(root, rec['filename'])
        if not osp.isfile(path):
            problems.append(f'{path}: missing (sample {rec["sample_token"]})')
            continue
        if rec['fileformat'].lower() in IMAGE_FORMATS:
            counts['images'] += 1
            with open(path, 'rb') as f:
                data = f.read()
            try:
                decode_image(data, path, rec['sample_token'], expected_hw=(rec['height'], rec['width']))
            except CorruptImageError as err:
                problems.append(str(err).split('; replace the file')[0])
        else:
            counts['lidar'] += 1
    for info_path in sorted(glob.glob(osp.join(root, '*_infos_temporal_*.pkl'))):
        counts['infos'] += 1
        try:
            infos = load_info_file(info_path)
        except DatasetCheckError as err:
            problems.append(str(err))
            continue
        for info in infos['data_list']:
            for cam in info['images'].values():
                if not osp.isfile(osp.join(root, cam['img_path'])):
                    problems.append(f'{osp.join(root, cam["img_path"])}: missing (referenced by {info_path}, '
                                    f'sample {info["token"]})')
    if problems:
        shown = '\n  '.join(problems[:max_report])
        more = f'\n  ... and {len(problems) - max_report} more' if len(problems) > max_report else ''
        raise DatasetCheckError(f'{len(problems)} problem(s) in {root}:\n  {shown}{more}\nReplace the files from the '
                                f'original download or recreate the set with tools/create_data.py ... --overwrite')
    return counts
