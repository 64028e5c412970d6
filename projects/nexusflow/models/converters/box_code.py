"""The last layer of the track head's regression branches, from UniAD / BEVFormer's box code to this project's.

Official code (``normalize_bbox`` of BEVFormer / UniAD, mmdet3d 0.17 LiDAR boxes ``(x, y, z, w, l, h, r)``)::

    (cx, cy, log w, log l, cz, log h, sin r, cos r, vx, vy)

This project (``models/uniad/track/box_coder.py``, mmdet3d 1.x LiDAR boxes ``(x, y, z, l, w, h, yaw)``)::

    (cx, cy, log l, log w, cz, log h, sin yaw, cos yaw, vx, vy)

Derivation. mmdet3d 0.17 built nuScenes LiDAR boxes as ``[centre, wlh, -yaw_nus - pi/2]``; mmdet3d 1.x
(v1.0.0rc0 "coordinate system refactoring", docs/en/notes/compatibility.md) builds ``[centre, lwh, yaw_nus]`` and
states that LiDAR ``(x_size, y_size, z_size)`` is now ``(l, w, h)`` instead of ``(w, l, h)``. Hence, for the same
physical box, ``w_017 = w``, ``l_017 = l`` (the sizes are the same numbers, only their slots move) and

    yaw = -r - pi/2,   sin(yaw) = -sin(r + pi/2) = -cos r,   cos(yaw) = cos(r + pi/2) = -sin r.

Centre, height and velocity (both in the LiDAR frame, whose axes did not change) are the same. So a new row ``i`` is
``sign_i * old_row[perm[i]]`` with ``perm = (0, 1, 3, 2, 4, 5, 7, 6, 8, 9)`` and ``sign = -1`` at ``i = 6, 7``; the
affine layer ``code = W x + b`` maps exactly (weights and bias alike), so decoded boxes are identical.
"""
from typing import Tuple

import torch
from torch import Tensor

#: new code entry i takes old entry ROW_PERM[i] ...
ROW_PERM = (0, 1, 3, 2, 4, 5, 7, 6, 8, 9)
#: ... multiplied by ROW_SIGN[i]
ROW_SIGN = (1., 1., 1., 1., 1., 1., -1., -1., 1., 1.)


def track_reg_rows_017_to_1x(weight: Tensor, bias: Tensor) -> Tuple[Tensor, Tensor]:
    """Weight ``[10, C]`` and bias ``[10]`` of a regression output layer, 0.17 box code -> 1.x box code."""
    if weight.shape[0] != len(ROW_PERM) or bias.shape != (len(ROW_PERM), ):
        raise ValueError(f'expected a 10-row box regression layer (weight [10, C], bias [10]), got weight '
                         f'{tuple(weight.shape)} and bias {tuple(bias.shape)}')
    perm = torch.tensor(ROW_PERM, device=weight.device)
    sign = torch.tensor(ROW_SIGN, dtype=weight.dtype, device=weight.device)
    return weight[perm] * sign[:, None], bias[perm] * sign.to(bias.dtype)
