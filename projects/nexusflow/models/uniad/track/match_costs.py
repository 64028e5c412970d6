"""L1 match cost between 3-D box codes (UniAD's ``BBox3DL1Cost``, on ``InstanceData`` as mmdet 3.x costs)."""
from typing import Optional

import torch
from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet3d.registry import TASK_UTILS


@TASK_UTILS.register_module('UniADTrackBoxL1Cost')
class TrackBoxL1Cost(BaseMatchCost):
    """``weight * sum_k |pred_k - gt_k|`` over the first ``num_dims`` entries of the box code.

    Args:
        weight (float): cost weight.
        num_dims (int): leading code entries compared; 8 skips the velocity of the 10-dim track code
            ``(cx, cy, log l, log w, cz, log h, sin, cos, vx, vy)`` as UniAD does.
    """

    def __init__(self, weight: float = 1.0, num_dims: int = 8) -> None:
        super().__init__(weight=weight)
        self.num_dims = num_dims

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData,
                 img_meta: Optional[dict] = None, **kwargs) -> Tensor:
        """Cost matrix ``[num_preds, num_gts]`` from ``pred_instances.bboxes`` ``[num_preds, D]`` and
        ``gt_instances.bboxes`` ``[num_gts, D]`` (box codes, metres)."""
        pred = pred_instances.bboxes[:, :self.num_dims].float()
        gt = gt_instances.bboxes[:, :self.num_dims].float()
        return torch.cdist(pred, gt, p=1) * self.weight
