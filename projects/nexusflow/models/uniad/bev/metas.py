"""Read the per-sample image metas the BEV encoder needs into batched tensors, with clear errors.

Every meta is one sample's ``metainfo`` dict (``projects/nexusflow/README.md``): ``lidar2img`` (``[N, 4, 4]``
LiDAR -> input-image pixels), ``batch_input_shape`` (``(H_pad, W_pad)``, set by the data preprocessor), optionally
``img_shape`` (``(H, W)`` of the resized, unpadded images, or one such pair per camera) and ``can_bus``
(18 floats, BEVFormer layout).
"""
from typing import List, Sequence

import numpy as np
import torch
from torch import Tensor


def _meta_value(meta: dict, key: str, index: int):
    if key not in meta:
        raise KeyError(f'img_metas[{index}] has no {key!r} (keys: {sorted(meta)}); the BEV encoder needs it, '
                       'see the per-frame data sample contract in projects/nexusflow/README.md')
    value = meta[key]
    return value.detach().cpu().numpy() if isinstance(value, Tensor) else value


def stack_lidar2img(img_metas: Sequence[dict], num_cams: int, device=None) -> Tensor:
    """``[B, N, 4, 4]`` float64 LiDAR -> pixel matrices of the batch (``ValueError`` on a wrong shape)."""
    mats = []
    for index, meta in enumerate(img_metas):
        mat = np.asarray(_meta_value(meta, 'lidar2img', index), dtype=np.float64)
        if mat.shape != (num_cams, 4, 4):
            raise ValueError(f'img_metas[{index}]["lidar2img"] must be [{num_cams}, 4, 4] (one matrix per camera), '
                             f'got {mat.shape}')
        mats.append(mat)
    return torch.from_numpy(np.stack(mats)).to(device)


def input_sizes(img_metas: Sequence[dict], device=None) -> Tensor:
    """``[B, 2]`` float64 padded input sizes ``(H_pad, W_pad)`` from ``batch_input_shape``."""
    sizes = []
    for index, meta in enumerate(img_metas):
        size = np.asarray(_meta_value(meta, 'batch_input_shape', index), dtype=np.float64).reshape(-1)
        if size.shape[0] < 2 or np.any(size[:2] <= 0):
            raise ValueError(f'img_metas[{index}]["batch_input_shape"] must be (H_pad, W_pad) > 0, got {size}')
        sizes.append(size[:2])
    return torch.from_numpy(np.stack(sizes)).to(device)


def image_sizes(img_metas: Sequence[dict], num_cams: int, device=None) -> Tensor:
    """``[B, N, 2]`` float64 valid image sizes ``(H, W)``: ``img_shape`` if present, else ``batch_input_shape``.

    ``img_shape`` may be one ``(H, W[, C])`` for all cameras or ``num_cams`` of them.
    """
    sizes = []
    for index, meta in enumerate(img_metas):
        key = 'img_shape' if 'img_shape' in meta else 'batch_input_shape'
        size = np.asarray(_meta_value(meta, key, index), dtype=np.float64)
        if size.ndim == 1 and size.shape[0] >= 2:
            size = np.broadcast_to(size[:2], (num_cams, 2))
        elif size.ndim == 2 and size.shape[0] == num_cams and size.shape[1] >= 2:
            size = size[:, :2]
        else:
            raise ValueError(f'img_metas[{index}][{key!r}] must be (H, W) or {num_cams} x (H, W), got {size.shape}')
        sizes.append(size)
    return torch.from_numpy(np.stack(sizes)).to(device)


def stack_can_bus(img_metas: Sequence[dict], device=None) -> Tensor:
    """``[B, 18]`` float64 CAN-bus vectors (BEVFormer layout: pos 3, quat 4, accel 3, rot_rate 3, vel 3,
    yaw_rad, yaw_deg)."""
    rows: List[np.ndarray] = []
    for index, meta in enumerate(img_metas):
        row = np.asarray(_meta_value(meta, 'can_bus', index), dtype=np.float64).reshape(-1)
        if row.shape != (18,):
            raise ValueError(f'img_metas[{index}]["can_bus"] must hold 18 floats, got {row.shape[0]}')
        rows.append(row)
    return torch.from_numpy(np.stack(rows)).to(device)
