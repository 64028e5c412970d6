"""Write a synthetic NYUv2-like dataset in the exact preprocessed MTAN format.

``<out_dir>/{train,val}/{image,label,depth,normal}/{i}.npy`` (layouts in :mod:`projects.nexusflow.nyuv2.meta`),
plus ``<out_dir>/meta.json`` (generator settings, intrinsics, frames and class names; the dataset ignores it).

Each image is a random furnished room (:func:`sample_room`) seen from a random pose (:func:`sample_camera`),
ray-cast with a pinhole camera of NYUv2's field of view: 13-class labels (unlabelled clutter = -1), depth along the
optical axis in metres, camera-frame unit normals facing the camera, and a shaded RGB image. Like NYUv2's Kinect,
depth (and with it the normal) is invalid (0) on window glass and in a thin band at the left/right image borders.
Image ``i`` of a split depends only on ``(seed, split, i)``: any subset can be regenerated bit-identically.
"""
import json
import os
import os.path as osp
from typing import Dict, Tuple

import numpy as np

from ..meta import NUM_CLASSES, NYU13_CLASSES, NYUV2_SIZE, SPLITS
from .furniture import LABEL
from .raycast import camera_matrix, cast, pixel_rays
from .scene import sample_camera, sample_room
from .shading import shade

GENERATOR_VERSION = 1


def render_sample(rng: np.random.Generator, img_size: Tuple[int, int] = NYUV2_SIZE) -> Dict[str, np.ndarray]:
    """Render one random room.

    Args:
        rng (np.random.Generator): the sample's generator.
        img_size (tuple): ``(H, W)`` pixels.

    Returns:
        dict: ``image`` float32 ``[H, W, 3]`` RGB in ``[0, 1]``; ``label`` float32 ``[H, W]`` in ``[-1, 13)``;
        ``depth`` float32 ``[H, W, 1]`` metres (0 = invalid); ``normal`` float32 ``[H, W, 3]`` camera frame
        (all-zero = invalid).
    """
    height, width = img_size
    room = sample_room(rng)
    origin, cam2world = sample_camera(rng, room)
    dirs = pixel_rays(camera_matrix(height, width), height, width) @ cam2world.T
    gbuf = cast(room, origin, dirs)
    image = shade(gbuf, room, origin, dirs, rng)
    normal = gbuf.normal @ cam2world
    band = int(round(rng.uniform(0.0, 0.02) * width))
    invalid = (gbuf.label == LABEL['window']).reshape(height, width)
    invalid[:, :band] = True
    invalid[:, width - band:] = True
    depth = np.where(invalid, 0.0, gbuf.depth.reshape(height, width))
    normal = np.where(invalid[..., None], 0.0, normal.reshape(height, width, 3))
    return dict(image=image.reshape(height, width, 3).astype(np.float32),
                label=gbuf.label.reshape(height, width).astype(np.float32),
                depth=depth[..., None].astype(np.float32), normal=normal.astype(np.float32))


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``: independent of every other image."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


def generate_synthetic_nyuv2(out_dir: str, num_train: int = 795, num_val: int = 654,
                             img_size: Tuple[int, int] = NYUV2_SIZE, seed: int = 0) -> Dict[str, object]:
    """Write ``num_train`` / ``num_val`` rendered rooms into ``out_dir`` (created if missing).

    Args:
        out_dir (str): data root (gets ``train/``, ``val/`` and ``meta.json``).
        num_train (int): training images (NYUv2: 795).
        num_val (int): validation images (NYUv2: 654).
        img_size (tuple): ``(H, W)`` pixels, each ``>= 8`` (NYUv2 as preprocessed by MTAN: 288 x 384).
        seed (int): dataset seed.

    Returns:
        dict: the content of ``meta.json``.
    """
    height, width = (int(v) for v in img_size)
    if min(height, width) < 8 or min(num_train, num_val) < 0:
        raise ValueError(f'need img_size >= (8, 8) and non-negative counts, got img_size={img_size}, '
                         f'num_train={num_train}, num_val={num_val}')
    for split, count in (('train', num_train), ('val', num_val)):
        for folder in ('image', 'label', 'depth', 'normal'):
            os.makedirs(osp.join(out_dir, split, folder), exist_ok=True)
        for index in range(count):
            for folder, array in render_sample(sample_rng(seed, split, index), (height, width)).items():
                np.save(osp.join(out_dir, split, folder, f'{index}.npy'), array)
    intrinsics = camera_matrix(height, width)
    meta = dict(generator='nexusflow-nyuv2-synthetic', version=GENERATOR_VERSION, seed=seed,
                img_shape=[height, width], num_train=num_train, num_val=num_val, classes=list(NYU13_CLASSES),
                num_classes=NUM_CLASSES, camera_frame='x right, y down, z forward (OpenCV)',
                pixel_centres='(u + 0.5, v + 0.5)', depth='metres along the optical axis, 0 = invalid',
                normal='camera frame, unit, facing the camera, all-zero = invalid',
                intrinsics=dict(fx=intrinsics[0, 0], fy=intrinsics[1, 1], cx=intrinsics[0, 2], cy=intrinsics[1, 2]))
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    return meta
