"""The BEV-encoder behaviours the official UniAD / BEVFormer weights were trained with (``compat='uniad'``).

This project's encoder aligns the previous BEV exactly through ``prev2cur`` and feeds the CAN-bus MLP LiDAR-frame
motion (see ``encoder.py``). BEVFormer's ``PerceptionTransformer.get_bev_features`` + ``BEVFormerEncoder`` instead:

- take the ego motion since the previous frame from the CAN-bus deltas: slots 0-2 = ego displacement in the
  **global** frame (current minus previous ``ego2global`` translation), slot 17 = current minus previous ego yaw in
  degrees, each yaw taken in ``[0, 360)`` and the difference not wrapped; slot 16 = current ego yaw in radians;
- rotate the previous BEV, seen as a ``[C, bev_h, bev_w]`` image, by slot 17 degrees about the pixel
  ``(bev_w // 2, bev_h // 2)`` (torchvision ``rotate``: nearest neighbour, zeros outside; UniAD's
  ``rotate_center=[100, 100]`` on 200 x 200);
- shift the TSA reference points by the displacement turned into the current ego heading, in unit BEV
  coordinates: ``x += L sin(a) / (x_max - x_min)``, ``y += L cos(a) / (y_max - y_min)`` with ``L`` the planar
  displacement and ``a`` = ego yaw minus its direction. BEVFormer's encoder adds the shift in place to the shared
  reference grid (``shift_ref_2d = ref_2d  # .clone()``), so **both** TSA queues sample at the shifted points.

These functions compute those quantities from what this encoder receives (the metas' ``ego2global``,
``lidar2ego`` and ``prev2cur``); the previous ego pose is ``ego2global @ lidar2ego @ prev2cur @ lidar2ego^-1``
(one LiDAR mounting per scene).
"""
from typing import Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .geometry import check_pc_range

__all__ = ['COMPAT_MODES', 'uniad_ego_motion', 'uniad_reference_shift', 'rotate_bev_nearest']

COMPAT_MODES = (None, 'uniad')


def _poses(img_metas: Sequence[dict], key: str) -> Tensor:
    """``[B, 4, 4]`` float64 ``meta[key]`` of every sample."""
    rows = []
    for index, meta in enumerate(img_metas):
        if key not in meta:
            raise KeyError(f'img_metas[{index}] has no {key!r}; compat="uniad" derives the CAN-bus deltas from '
                           f'ego2global and lidar2ego (see the data-sample contract in projects/nexusflow/README.md)')
        value = meta[key]
        value = value.detach().cpu().numpy() if isinstance(value, Tensor) else value
        rows.append(np.asarray(value, dtype=np.float64).reshape(4, 4))
    return torch.from_numpy(np.stack(rows))


def _yaw_deg_0_360(ego2global: Tensor) -> Tensor:
    """Ego heading ``atan2(R[1, 0], R[0, 0])`` in degrees in ``[0, 360)`` (UniAD's ``patch_angle``), ``[B]``."""
    yaw = torch.rad2deg(torch.atan2(ego2global[:, 1, 0], ego2global[:, 0, 0]))
    return torch.where(yaw < 0, yaw + 360.0, yaw)


def uniad_ego_motion(img_metas: Sequence[dict], prev2cur: Tensor,
                     has_history: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """UniAD's CAN-bus motion of each sample since its previous frame.

    Args:
        img_metas (Sequence[dict]): ``B`` metas with ``ego2global`` and ``lidar2ego`` (4x4).
        prev2cur (Tensor): ``[B, 4, 4]`` previous LiDAR frame -> current LiDAR frame (or None).
        has_history (Tensor): ``[B]`` bool; samples without history get zero deltas (UniAD's first frame).

    Returns:
        tuple of float64 CPU tensors: ``delta [B, 3]`` ego displacement in the global frame (metres, current minus
        previous), ``delta_yaw [B]`` degrees (current minus previous yaw, both in ``[0, 360)``, not wrapped),
        ``yaw [B]`` current ego yaw in degrees in ``[0, 360)``.
    """
    ego2global = _poses(img_metas, 'ego2global')
    yaw = _yaw_deg_0_360(ego2global)
    history = has_history.detach().cpu()
    if prev2cur is None or not bool(history.any()):
        return torch.zeros(len(img_metas), 3, dtype=torch.float64), torch.zeros_like(yaw), yaw
    lidar2ego = _poses(img_metas, 'lidar2ego')
    motion = torch.where(history[:, None, None], prev2cur.detach().cpu().double(), torch.eye(4, dtype=torch.float64))
    prev_ego2global = ego2global @ lidar2ego @ motion @ torch.linalg.inv(lidar2ego)
    delta = (ego2global[:, :3, 3] - prev_ego2global[:, :3, 3]) * history[:, None]
    delta_yaw = (yaw - _yaw_deg_0_360(prev_ego2global)) * history
    return delta, delta_yaw, yaw


def uniad_reference_shift(delta: Tensor, yaw_deg: Tensor, pc_range: Sequence[float]) -> Tensor:
    """BEVFormer's ``shift`` of the TSA reference points, ``[B, 2]`` float64 unit ``(x, y)``.

    Args:
        delta (Tensor): ``[B, >=2]`` ego displacement in the global frame (metres).
        yaw_deg (Tensor): ``[B]`` current ego yaw in degrees.
        pc_range (Sequence[float]): the BEV range (its x / y extents are BEVFormer's ``real_w`` / ``real_h``).
    """
    x_min, y_min, _, x_max, y_max, _ = check_pc_range(pc_range)
    length = torch.hypot(delta[:, 0], delta[:, 1])
    bev_angle = torch.deg2rad(yaw_deg - torch.rad2deg(torch.atan2(delta[:, 1], delta[:, 0])))
    return torch.stack((length * torch.sin(bev_angle) / (x_max - x_min),
                        length * torch.cos(bev_angle) / (y_max - y_min)), -1)


def rotate_bev_nearest(bev: Tensor, angle_deg: Tensor, bev_h: int, bev_w: int) -> Tensor:
    """torchvision ``rotate(img, angle, center=[bev_w // 2, bev_h // 2])`` (nearest, zero fill) of each BEV.

    The output pixel at column ``u``, row ``v`` reads the input at ``c + R(angle) (p - c)`` rounded half to even,
    ``p = (u + 0.5, v + 0.5)``, ``c`` = the centre pixel corner ``(bev_w // 2, bev_h // 2)``,
    ``R = [[cos, -sin], [sin, cos]]`` in image coordinates (x right, y down), i.e. the image turns
    counter-clockwise on screen by ``angle`` degrees.

    Args:
        bev (Tensor): ``[B, bev_h * bev_w, C]`` row-major BEV features.
        angle_deg (Tensor): ``[B]`` degrees.

    Returns:
        Tensor: ``[B, bev_h * bev_w, C]``, zeros where the source falls outside the grid.
    """
    angle = torch.deg2rad(angle_deg.detach().cpu().double())[:, None]
    rows, cols = torch.meshgrid(torch.arange(bev_h, dtype=torch.float64), torch.arange(bev_w, dtype=torch.float64),
                                indexing='ij')
    px = (cols.reshape(1, -1) + 0.5) - bev_w // 2
    py = (rows.reshape(1, -1) + 0.5) - bev_h // 2
    src_x = torch.round(torch.cos(angle) * px - torch.sin(angle) * py + bev_w // 2 - 0.5).long()
    src_y = torch.round(torch.sin(angle) * px + torch.cos(angle) * py + bev_h // 2 - 0.5).long()
    inside = (src_x >= 0) & (src_x < bev_w) & (src_y >= 0) & (src_y < bev_h)  # [B, HW]
    index = (src_y.clamp(0, bev_h - 1) * bev_w + src_x.clamp(0, bev_w - 1)).to(bev.device)
    gathered = torch.gather(bev, 1, index[:, :, None].expand(-1, -1, bev.shape[-1]))
    return gathered * inside.to(device=bev.device, dtype=bev.dtype)[:, :, None]
