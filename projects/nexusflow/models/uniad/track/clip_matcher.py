"""Per-frame assignment of one sample's queries to its GT boxes, keeping the ids of tracked queries.

Follows UniAD's ``ClipMatcher.match_for_single_frame`` (from MOTR), without its state: a query that already tracks
an object keeps the GT box with that instance id (or is background when the object is absent from this frame);
the free queries are Hungarian-matched (``scipy.optimize.linear_sum_assignment``) to the GT boxes that no tracked
query claimed, with cost ``cls_cost + reg_cost``. The ego query and other negative ids below ``FREE_ID`` take part in
neither step. The caller decides whether to commit the new ids (UniAD commits the last decoder layer's matching).
"""
from typing import Tuple

import numpy as np
import torch
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mmdet3d.registry import TASK_UTILS
from ...layers.finite import check_finite
from .instances import FREE_ID


@TASK_UTILS.register_module('UniADClipMatcher')
class ClipMatcher:
    """Id-keeping plus Hungarian assignment.

    Args:
        cls_cost (dict): TASK_UTILS config of the classification cost on ``scores`` (logits) / ``labels``.
        reg_cost (dict): TASK_UTILS config of the box cost on ``bboxes`` (box codes).
    """

    def __init__(self, cls_cost: dict = dict(type='mmdet.FocalLossCost', weight=2.0),
                 reg_cost: dict = dict(type='UniADTrackBoxL1Cost', weight=0.25)) -> None:
        self.cls_cost = TASK_UTILS.build(cls_cost)
        self.reg_cost = TASK_UTILS.build(reg_cost)

    @torch.no_grad()
    def match(self, obj_ids: Tensor, cls_logits: Tensor, box_codes: Tensor, gt_ids: Tensor, gt_labels: Tensor,
              gt_codes: Tensor) -> Tensor:
        """Assign the ``N`` queries of one sample to its ``M`` GT boxes.

        Args:
            obj_ids (Tensor): ``[N]`` long, track id of each query (``>= 0``), ``FREE_ID`` or the ego id.
            cls_logits (Tensor): ``[N, K]`` class logits.
            box_codes (Tensor): ``[N, 10]`` predicted box codes (metres).
            gt_ids (Tensor): ``[M]`` long, instance ids of the GT boxes (unique).
            gt_labels (Tensor): ``[M]`` long, classes in ``[0, K)``.
            gt_codes (Tensor): ``[M, 10]`` GT box codes (metres).

        Returns:
            Tensor: ``[N]`` long, the GT index of each query in ``[0, M)``, or ``-1`` (background / not assigned).
        """
        gt_index = self.keep_ids(obj_ids, gt_ids)
        free = torch.nonzero(obj_ids == FREE_ID).flatten()
        claimed = torch.zeros(len(gt_ids), dtype=torch.bool, device=gt_ids.device)
        claimed[gt_index[gt_index >= 0]] = True
        untracked = torch.nonzero(~claimed).flatten()
        rows, cols = self.hungarian(cls_logits[free], box_codes[free], gt_labels[untracked], gt_codes[untracked])
        gt_index[free[rows]] = untracked[cols]
        return gt_index

    @staticmethod
    def keep_ids(obj_ids: Tensor, gt_ids: Tensor) -> Tensor:
        """``[N]`` long: for queries with ``obj_id >= 0`` the index of the GT with that id, else ``-1``."""
        same = (obj_ids[:, None] == gt_ids[None, :]) & (obj_ids[:, None] >= 0)       # [N, M]
        first = same.long().argmax(dim=1) if same.shape[1] > 0 else obj_ids.new_zeros(obj_ids.shape)
        return torch.where(same.any(dim=1), first, torch.full_like(obj_ids, -1))

    def hungarian(self, cls_logits: Tensor, box_codes: Tensor, gt_labels: Tensor,
                  gt_codes: Tensor) -> Tuple[Tensor, Tensor]:
        """Minimum-cost one-to-one matching of ``n`` predictions to ``m`` GT boxes.

        Args:
            cls_logits (Tensor): ``[n, K]`` logits.
            box_codes (Tensor): ``[n, 10]`` box codes.
            gt_labels (Tensor): ``[m]`` labels.
            gt_codes (Tensor): ``[m, 10]`` box codes.

        Returns:
            tuple[Tensor, Tensor]: long ``rows`` (prediction indices) and ``cols`` (GT indices), each of length
            ``min(n, m)``, on the device of ``box_codes``.
        """
        device = box_codes.device
        if len(cls_logits) == 0 or len(gt_labels) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return empty, empty
        check_finite(dict(cls_logits=cls_logits, box_codes=box_codes), 'track head matcher')
        preds = InstanceData(scores=cls_logits.float(), bboxes=box_codes.float())
        gts = InstanceData(labels=gt_labels, bboxes=gt_codes.float())
        cost = self.cls_cost(preds, gts) + self.reg_cost(preds, gts)                 # [n, m]
        cost = np.nan_to_num(cost.cpu().numpy(), nan=1e8, posinf=1e8, neginf=-1e8)
        rows, cols = linear_sum_assignment(cost)
        return (torch.as_tensor(rows, dtype=torch.long, device=device),
                torch.as_tensor(cols, dtype=torch.long, device=device))
