"""Query filter of the map head: repeated Hungarian matching that picks up to ``max_pos`` queries per GT.

Follows UniAD ``seg_head_plugin/seg_assigner.py`` ``HungarianAssigner_filter``: the first round is the ordinary
one-to-one matching (used for the box and class losses of the last decoder layer); every further round matches
the GTs again among the queries not taken yet, and all queries taken in any round go to the mask decoder.
Changed: written on mmdet 3.x match costs (``TASK_UTILS``); rounds stop when the queries run out instead of
UniAD's ``min(max_pos, 300 // num_gts)`` with a hard-coded 300.
"""
from typing import List, Optional, Union

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from mmdet3d.registry import TASK_UTILS
from ...layers.finite import check_finite


@TASK_UTILS.register_module('UniADFilterHungarianAssigner')
class FilterHungarianAssigner(BaseAssigner):
    """Hungarian matching repeated ``max_pos`` times over the remaining queries.

    Args:
        match_costs (list[dict] | dict): mmdet match-cost configs summed into the cost matrix, e.g.
            ``[dict(type='mmdet.FocalLossCost', weight=2.0), dict(type='mmdet.BBoxL1Cost', weight=5.0,
            box_format='xywh'), dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0)]``.
        max_pos (int): Maximum rounds, i.e. queries kept per GT (UniAD: 3).
    """

    def __init__(self, match_costs: Union[List[dict], dict], max_pos: int = 3) -> None:
        if max_pos < 1:
            raise ValueError(f'max_pos must be >= 1, got {max_pos}')
        match_costs = [match_costs] if isinstance(match_costs, dict) else list(match_costs)
        if not match_costs:
            raise ValueError('match_costs must name at least one mmdet match cost')
        self.match_costs = [TASK_UTILS.build(cost) for cost in match_costs]
        self.max_pos = max_pos

    @torch.no_grad()
    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData, img_meta: Optional[dict] = None,
               **kwargs) -> AssignResult:
        """Match predictions to GT in up to ``max_pos`` rounds.

        Args:
            pred_instances (InstanceData): ``scores`` ``[N, num_classes]`` logits and ``bboxes`` ``[N, 4]`` pixel
                ``x1, y1, x2, y2`` (plus whatever the costs read).
            gt_instances (InstanceData): ``labels`` ``[K]`` and ``bboxes`` ``[K, 4]`` pixel ``x1, y1, x2, y2``.
            img_meta (dict): ``img_shape`` ``(H, W)`` of the canvas, for the normalised L1 cost.

        Returns:
            AssignResult: the first (one-to-one) round: ``gt_inds`` ``[N]`` (0 background, ``k + 1`` matched to
            GT ``k``) and ``labels``. Extra property ``'selected_inds'``: LongTensor ``[n]``, ascending indices of
            every query matched in any round (``n <= max_pos * K``).
        """
        num_gts, num_preds = len(gt_instances), len(pred_instances)
        device = gt_instances.labels.device
        gt_inds = torch.zeros(num_preds, dtype=torch.long, device=device)
        labels = torch.full((num_preds, ), -1, dtype=torch.long, device=device)
        selected = torch.zeros(num_preds, dtype=torch.bool, device=device)
        if num_gts > 0 and num_preds > 0:
            check_finite(dict(scores=pred_instances.scores, bboxes=pred_instances.bboxes), 'map head query filter')
            cost = torch.stack([c(pred_instances, gt_instances, img_meta) for c in self.match_costs]).sum(0)
            self._match_rounds(cost.cpu(), gt_instances.labels, gt_inds, labels, selected)
        result = AssignResult(num_gts=num_gts, gt_inds=gt_inds, max_overlaps=None, labels=labels)
        result.set_extra_property('selected_inds', selected.nonzero().squeeze(1))
        return result

    def _match_rounds(self, cost: torch.Tensor, gt_labels: torch.Tensor, gt_inds: torch.Tensor,
                      labels: torch.Tensor, selected: torch.Tensor) -> None:
        """Fill the first-round ``gt_inds``/``labels`` and the ``selected`` mask in place."""
        available = torch.ones(cost.shape[0], dtype=torch.bool)
        for round_idx in range(self.max_pos):
            rows_left = available.nonzero().squeeze(1)
            if rows_left.numel() == 0:
                break
            rows, cols = linear_sum_assignment(cost[rows_left].numpy())
            queries = rows_left[torch.from_numpy(rows)]
            cols = torch.from_numpy(cols).to(gt_inds.device)
            if round_idx == 0:
                gt_inds[queries.to(gt_inds.device)] = cols + 1
                labels[queries.to(gt_inds.device)] = gt_labels[cols]
            available[queries] = False
            selected[queries.to(selected.device)] = True
