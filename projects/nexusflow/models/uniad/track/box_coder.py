"""The box code of the track head, and the one place where it is encoded and decoded.

Box code (``CODE_SIZE = 10``), all in the LiDAR frame of the current sample, metres, radians and m/s:

    ``(cx, cy, log l, log w, cz, log h, sin yaw, cos yaw, vx, vy)``

following the mmdet3d 1.x ``LiDARInstance3DBoxes`` convention: ``l`` is the extent along the heading, ``yaw`` is
measured counter-clockwise from the LiDAR +x axis, ``(cx, cy, cz)`` is the **gravity** centre (the structures store
the bottom centre; ``cz = z_bottom + h / 2``, as mmdet3d's DETR3D project does). UniAD's ``normalize_bbox`` uses
``(cx, cy, log w, log l, cz, ...)`` in the mmdet3d 0.17 convention; the ``l``/``w`` order is changed here so that
checkpoints of UniAD need the regression rows permuted (``reference/uniad.md`` §3).

The regression branch predicts the code except for the centre: its outputs ``[0, 1, 4]`` are offsets to the
reference point in inverse-sigmoid space of ``point_cloud_range`` (``refine``); the centre in metres is
``range_min + sigmoid(offset + reference) * (range_max - range_min)``.
"""
import math
from typing import Sequence

import torch
from torch import Tensor

from mmdet3d.registry import TASK_UTILS

CODE_SIZE = 10
CENTRE_DIMS = (0, 1, 4)  # cx, cy, cz
LOG_SIZE_DIMS = (2, 3, 5)  # log l, log w, log h
YAW_DIMS = (6, 7)  # sin yaw, cos yaw
VELOCITY_DIMS = (8, 9)  # vx, vy


@TASK_UTILS.register_module('UniADTrackBoxCoder')
class TrackBoxCoder:
    """Encode 9-dim LiDAR boxes into the 10-dim box code and back; map centres to and from the unit cube.

    Args:
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max, y_max, z_max)`` in metres, LiDAR
            frame; reference points live in its unit cube (inverse-sigmoid space in the head).
    """

    def __init__(self, point_cloud_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)) -> None:
        if len(point_cloud_range) != 6:
            raise ValueError(f'point_cloud_range must have 6 values (x_min, y_min, z_min, x_max, y_max, z_max), '
                             f'got {len(point_cloud_range)}: {point_cloud_range}')
        lows, highs = point_cloud_range[:3], point_cloud_range[3:]
        if any(hi <= lo for lo, hi in zip(lows, highs)):
            raise ValueError(f'point_cloud_range maxima must exceed minima, got {point_cloud_range}')
        self.point_cloud_range = tuple(float(v) for v in point_cloud_range)

    def _range(self, ref: Tensor):
        low = ref.new_tensor(self.point_cloud_range[:3])
        return low, ref.new_tensor(self.point_cloud_range[3:]) - low

    def to_unit(self, xyz: Tensor) -> Tensor:
        """Metres ``[..., 3]`` (LiDAR frame) -> unit cube ``[..., 3]``; 0 / 1 at the range limits (not clamped)."""
        low, size = self._range(xyz)
        return (xyz - low) / size

    def to_metric(self, unit: Tensor) -> Tensor:
        """Unit cube ``[..., 3]`` -> metres ``[..., 3]`` in the LiDAR frame."""
        low, size = self._range(unit)
        return unit * size + low

    def encode(self, boxes: Tensor) -> Tensor:
        """Boxes ``[..., 9]`` ``(x, y, z_bottom, l, w, h, yaw, vx, vy)`` (sizes > 0) -> codes ``[..., 10]``."""
        if boxes.shape[-1] != 9:
            raise ValueError(f'boxes must have 9 values (x, y, z, l, w, h, yaw, vx, vy), got shape '
                             f'{tuple(boxes.shape)}; load GT with velocity (box_dim=9)')
        x, y, z, length, width, height, yaw, vx, vy = boxes.unbind(-1)
        return torch.stack((x, y, length.log(), width.log(), z + 0.5 * height, height.log(),
                            yaw.sin(), yaw.cos(), vx, vy), dim=-1)

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``[..., 10]`` -> boxes ``[..., 9]`` ``(x, y, z_bottom, l, w, h, yaw, vx, vy)``, yaw in
        ``(-pi, pi]``."""
        if codes.shape[-1] != CODE_SIZE:
            raise ValueError(f'box codes must have {CODE_SIZE} values, got shape {tuple(codes.shape)}')
        cx, cy, log_l, log_w, cz, log_h, sin_yaw, cos_yaw, vx, vy = codes.unbind(-1)
        height = log_h.exp()
        yaw = torch.atan2(sin_yaw, cos_yaw)
        yaw = torch.where(yaw <= -math.pi, yaw + 2 * math.pi, yaw)
        return torch.stack((cx, cy, cz - 0.5 * height, log_l.exp(), log_w.exp(), height, yaw, vx, vy), dim=-1)

    @staticmethod
    def refined_reference(deltas: Tensor, reference: Tensor) -> Tensor:
        """Refined reference ``[..., 3]`` (inverse-sigmoid space): ``deltas[..., (0, 1, 4)] + reference``.

        Args:
            deltas (Tensor): ``[..., 10]`` raw output of a regression branch.
            reference (Tensor): ``[..., 3]`` reference ``(x, y, z)`` in inverse-sigmoid space.
        """
        return deltas[..., list(CENTRE_DIMS)] + reference

    def refine(self, deltas: Tensor, reference: Tensor) -> Tensor:
        """Box codes ``[..., 10]`` in metres from a regression output and its reference point.

        Args:
            deltas (Tensor): ``[..., 10]`` raw output of a regression branch; ``[0, 1, 4]`` are centre offsets in
                inverse-sigmoid space, the rest is already in code units.
            reference (Tensor): ``[..., 3]`` reference ``(x, y, z)`` in inverse-sigmoid space of the range.

        Returns:
            Tensor: ``[..., 10]`` codes with the centre in metres, inside ``point_cloud_range``.
        """
        centre = self.to_metric(self.refined_reference(deltas, reference).sigmoid())
        return torch.cat((centre[..., :2], deltas[..., 2:4], centre[..., 2:3], deltas[..., 5:]), dim=-1)

    @staticmethod
    def centre_size(codes: Tensor) -> Tensor:
        """Codes ``[..., 10]`` -> ``[..., 10]`` ``(cx, cy, cz, l, w, h, sin yaw, cos yaw, vx, vy)``: gravity centre and
        sizes in metres (the boxes of the head's ``pred_tap``), differentiable."""
        return torch.cat((codes[..., list(CENTRE_DIMS)], codes[..., list(LOG_SIZE_DIMS)].exp(),
                          codes[..., list(YAW_DIMS + VELOCITY_DIMS)]), dim=-1)
