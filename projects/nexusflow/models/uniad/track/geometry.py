"""Frame geometry of the track head: velocity propagation of reference points, the ego velocity and box.

Propagation follows UniAD's ``UniADTrack.velo_update``: a reference point moves with its predicted velocity for the
time between frames and is then re-expressed in the next LiDAR frame. Changed: the relative transform
``prev LiDAR -> current LiDAR`` is formed once in float64 from the two ``lidar2global`` matrices
(``core/frames.py``, shared with the rest of the plugin), so the large global coordinates never meet float32
arithmetic.
"""
from typing import Mapping, Sequence, Tuple

import numpy as np
import torch
from mmdet.models.layers.transformer import inverse_sigmoid
from torch import Tensor

from ....core.frames import lidar2global_of, pose_of, timestamp_of
from .box_coder import TrackBoxCoder


def propagate_reference_points(ref_pts: Tensor, velocity: Tensor, prev2cur: Tensor, time_delta: float,
                               coder: TrackBoxCoder) -> Tensor:
    """Move reference points with their velocity and re-express them in the current LiDAR frame.

    Args:
        ref_pts (Tensor): ``[N, 3]`` reference ``(x, y, z)`` in inverse-sigmoid space of the point cloud range,
            previous LiDAR frame.
        velocity (Tensor): ``[N, 2]`` ``(vx, vy)`` in m/s, previous LiDAR frame.
        prev2cur (Tensor): ``[4, 4]`` rigid transform previous LiDAR -> current LiDAR (any float dtype).
        time_delta (float): seconds from the previous frame to the current one.
        coder (TrackBoxCoder): gives the point cloud range.

    Returns:
        Tensor: ``[N, 3]`` reference points in inverse-sigmoid space of the current LiDAR frame (points that leave
        the range are clamped to its border by the inverse sigmoid's ``eps``).
    """
    xyz = coder.to_metric(ref_pts.float().sigmoid())
    moved = torch.cat((xyz[:, :2] + velocity.float() * time_delta, xyz[:, 2:]), dim=1)
    transform = prev2cur.to(moved)
    cur = moved @ transform[:3, :3].T + transform[:3, 3]
    return inverse_sigmoid(coder.to_unit(cur))


def ego_velocity_in_lidar(metas: Sequence[Mapping], index: int) -> Tuple[float, float]:
    """Velocity ``(vx, vy)`` in m/s of the ego origin at frame ``index`` of a clip, in that frame's LiDAR axes.

    Forward difference to the next frame; the last frame of the clip uses the backward difference; a single-frame
    clip gives zero.

    Args:
        metas (Sequence[Mapping]): the metainfo of the clip's frames of one sample, in time order.
        index (int): the frame.
    """
    if len(metas) == 1:
        return 0.0, 0.0
    first, second = (index, index + 1) if index + 1 < len(metas) else (index - 1, index)
    time_delta = timestamp_of(metas[second]) - timestamp_of(metas[first])
    if time_delta <= 0:
        raise ValueError(f'timestamps must increase within a clip, got {timestamp_of(metas[first])} then '
                         f'{timestamp_of(metas[second])} s')
    displacement = pose_of(metas[second], 'ego2global')[:3, 3] - pose_of(metas[first], 'ego2global')[:3, 3]
    velocity = lidar2global_of(metas[index])[:3, :3].T @ (displacement / time_delta)
    return float(velocity[0]), float(velocity[1])


def ego_box_in_lidar(meta: Mapping, velocity: Tuple[float, float], size: Sequence[float]) -> Tensor:
    """The ego vehicle as a 9-dim LiDAR box ``(x, y, z_bottom, l, w, h, yaw, vx, vy)``, float32 ``[9]``.

    The bottom centre is the ego origin expressed in the LiDAR frame (``inverse(lidar2ego)`` translation; the
    nuScenes ego origin lies on the ground), the heading is the ego +x (forward) axis in the LiDAR frame.

    Args:
        meta (Mapping): metainfo with ``lidar2ego``.
        velocity (tuple[float, float]): ``(vx, vy)`` m/s in the LiDAR frame (``ego_velocity_in_lidar``).
        size (Sequence[float]): ``(l, w, h)`` in metres.
    """
    ego2lidar = np.linalg.inv(pose_of(meta, 'lidar2ego'))
    forward = ego2lidar[:3, :3] @ np.array([1.0, 0.0, 0.0])
    yaw = float(np.arctan2(forward[1], forward[0]))
    origin = ego2lidar[:3, 3]
    return torch.tensor([origin[0], origin[1], origin[2], *size, yaw, *velocity], dtype=torch.float32)
