"""Frame geometry from the per-frame metainfo: poses, the previous -> current LiDAR transform, the frame time.

The one implementation of ``lidar2global = ego2global @ lidar2ego`` (``projects/nexusflow/README.md``, coordinate
frames) and of the transform between two frames' LiDAR frames, used by the detector's temporal state, the track
head, the map GT transform and the tracking metric. It lives in ``core``, below the datasets, the models and
the metrics, so that every layer of the plugin can import it. Poses are float64 so that the large global coordinates
never meet float32 arithmetic; only the (small) relative transform is handed to the networks.
"""
from typing import Mapping, Optional, Sequence, TypeVar

import numpy as np
import torch
from torch import Tensor

Pose = TypeVar('Pose', np.ndarray, Tensor)


def pose_of(meta: Mapping, key: str) -> np.ndarray:
    """``meta[key]`` as a float64 ``[4, 4]`` homogeneous transform (e.g. ``'ego2global'``, ``'lidar2ego'``).

    Args:
        meta (Mapping): a frame's metainfo (or info / data-sample dict) holding ``key`` as a 4x4 list, array or
            tensor.
        key (str): the matrix to read.

    Returns:
        np.ndarray: ``[4, 4]`` float64.
    """
    if key not in meta:
        raise KeyError(f'metainfo lacks {key!r} (a 4x4 matrix): the pipeline must pack ego2global and lidar2ego '
                       f'for every frame (see projects/nexusflow/README.md). Got keys {sorted(meta)}')
    mat = np.asarray(meta[key], dtype=np.float64)
    if mat.shape != (4, 4):
        raise ValueError(f'metainfo[{key!r}] must be 4x4, got shape {mat.shape}')
    return mat


def lidar2global_of(meta: Mapping) -> np.ndarray:
    """The frame's LiDAR -> global transform ``ego2global @ lidar2ego``: float64 ``[4, 4]`` (metres)."""
    return pose_of(meta, 'ego2global') @ pose_of(meta, 'lidar2ego')


def relative_pose(prev_lidar2global: Pose, cur_lidar2global: Pose) -> Pose:
    """Transform of points from the previous LiDAR frame into the current one: ``inverse(cur) @ prev``.

    Args:
        prev_lidar2global (np.ndarray | Tensor): ``[4, 4]`` float64 LiDAR -> global pose of the previous frame.
        cur_lidar2global (np.ndarray | Tensor): ``[4, 4]`` float64 pose of the current frame, same kind as
            ``prev_lidar2global``.

    Returns:
        np.ndarray | Tensor: ``[4, 4]`` ``prev2cur``, computed by the inputs' own library (numpy in, numpy out;
        tensors in, a tensor on their device out).
    """
    if isinstance(cur_lidar2global, Tensor) != isinstance(prev_lidar2global, Tensor):
        raise TypeError(f'both poses must be numpy arrays or both tensors, got {type(prev_lidar2global).__name__} '
                        f'and {type(cur_lidar2global).__name__}')
    inverse = torch.linalg.inv if isinstance(cur_lidar2global, Tensor) else np.linalg.inv
    return inverse(cur_lidar2global) @ prev_lidar2global


def timestamp_of(meta: Mapping) -> float:
    """The frame time in seconds (``metainfo['timestamp']``)."""
    if 'timestamp' not in meta:
        raise KeyError(f'metainfo lacks "timestamp" (seconds); got keys {sorted(meta)}')
    return float(meta['timestamp'])


def stack_relative_poses(prev_lidar2global: Sequence[Optional[np.ndarray]],
                         cur_lidar2global: Sequence[np.ndarray]) -> Tensor:
    """``[B, 4, 4]`` float32 ``prev2cur`` of ``B`` streams; all zeros where the previous pose is ``None``.

    An all-zero matrix is the BEV encoder's "no history" marker (``prev_bev`` is ignored for that sample).

    Args:
        prev_lidar2global (Sequence[np.ndarray | None]): ``B`` float64 ``[4, 4]`` poses of the previous frames.
        cur_lidar2global (Sequence[np.ndarray]): ``B`` float64 ``[4, 4]`` poses of the current frames.
    """
    mats = [np.zeros((4, 4)) if prev is None else relative_pose(prev, cur)
            for prev, cur in zip(prev_lidar2global, cur_lidar2global)]
    return torch.from_numpy(np.stack(mats)).float()
