"""Classification and box losses of one decoder layer of one frame, over the ``B`` samples of a batch.

Follows UniAD's ``ClipMatcher.loss_labels`` / ``loss_boxes`` (focal loss on every query, L1 on the matched
queries and the ego query, ``code_weights`` per code entry). Changed:

* the batch: every sample's terms are multiplied by its label weight ``w_b`` (``has_track_gt``), never skipped, so
  an unlabelled sample contributes exactly zero loss and zero gradient while its queries stay in the graph;
* one normaliser for both losses, as mmdet's DETR heads: ``n = max(1, reduce_mean(sum_b w_b * (M_b + E)))`` with
  ``M_b`` GT boxes of sample ``b`` and ``E = 1`` with an ego target, else 0. Hence for per-sample losses ``L_b`` (the
  sample alone in a batch) the batch loss is ``sum_b w_b n_b L_b / sum_b w_b n_b`` with ``n_b = M_b + E``;
* non-finite GT code entries (nuScenes has NaN velocities) get weight 0 instead of poisoning the loss.
"""
from typing import Dict, List, Sequence

import torch
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule
from torch import Tensor

from mmdet3d.registry import MODELS
from .box_coder import CODE_SIZE
from .instances import EGO_ID
from .targets import FrameTargets


@MODELS.register_module('UniADTrackLoss')
class TrackLoss(BaseModule):
    """Focal classification + weighted L1 box loss for matched track queries.

    Args:
        num_classes (int): object classes ``K``; background is class index ``K`` for the focal loss.
        code_weights (Sequence[float]): ``10`` weights of the box code entries.
        loss_cls (dict): MODELS config of the classification loss (sigmoid focal loss in UniAD).
        loss_bbox (dict): MODELS config of the box regression loss (L1 in UniAD).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, num_classes: int = 10, code_weights: Sequence[float] = (1.0, ) * 8 + (0.2, 0.2),
                 loss_cls: dict = dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                                       loss_weight=2.0),
                 loss_bbox: dict = dict(type='mmdet.L1Loss', loss_weight=0.25), init_cfg=None) -> None:
        super().__init__(init_cfg)
        if len(code_weights) != CODE_SIZE:
            raise ValueError(f'code_weights must have {CODE_SIZE} entries, got {len(code_weights)}')
        self.num_classes = num_classes
        self.register_buffer('code_weights', torch.tensor(code_weights, dtype=torch.float32), persistent=False)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)

    def forward(self, cls_logits: List[Tensor], box_codes: List[Tensor], gt_index: List[Tensor],
                obj_ids: List[Tensor], targets: List[FrameTargets]) -> Dict[str, Tensor]:
        """Losses of one decoder layer; every argument is a list over the ``B`` samples.

        Args:
            cls_logits (list[Tensor]): ``[N_b, K]`` logits of the real (unpadded) queries.
            box_codes (list[Tensor]): ``[N_b, 10]`` predicted box codes (metres).
            gt_index (list[Tensor]): ``[N_b]`` long GT index per query, ``-1`` for background.
            obj_ids (list[Tensor]): ``[N_b]`` long query ids; the row with ``EGO_ID`` gets the ego target.
            targets (list[FrameTargets]): GT of each sample.

        Returns:
            dict[str, Tensor]: scalar ``loss_cls`` and ``loss_bbox`` (fp32).
        """
        avg_factor = self.avg_factor(targets, cls_logits[0])
        losses = self.loss_cls_term(cls_logits, gt_index, obj_ids, targets, avg_factor)
        losses.update(self.loss_bbox_term(box_codes, gt_index, obj_ids, targets, avg_factor))
        return losses

    @staticmethod
    def avg_factor(targets: List[FrameTargets], like: Tensor) -> float:
        """``max(1, reduce_mean(sum_b w_b * (M_b + E)))``: the labelled GT boxes (with the ego box) per process."""
        count = sum(t.weight * (len(t) + (t.ego_code is not None)) for t in targets)
        return float(reduce_mean(like.new_tensor(count, dtype=torch.float32)).clamp(min=1.0))

    def class_targets(self, gt_index: Tensor, obj_ids: Tensor, target: FrameTargets) -> Tensor:
        """``[N]`` long class target per query: the matched GT label, ``ego_label`` for the ego query, else
        ``K`` (background)."""
        labels = torch.full_like(gt_index, self.num_classes)
        matched = gt_index >= 0
        labels[matched] = target.labels[gt_index[matched]]
        if target.ego_code is not None:
            labels[obj_ids == EGO_ID] = target.ego_label
        return labels

    def loss_cls_term(self, cls_logits: List[Tensor], gt_index: List[Tensor], obj_ids: List[Tensor],
                      targets: List[FrameTargets], avg_factor: float) -> Dict[str, Tensor]:
        """``{'loss_cls'}``: ``loss_cls`` over all real queries, each sample weighted by ``w_b``."""
        labels = torch.cat([self.class_targets(g, o, t) for g, o, t in zip(gt_index, obj_ids, targets)])
        weights = torch.cat([torch.full((len(g), ), t.weight, device=g.device) for g, t in zip(gt_index, targets)])
        logits = torch.cat(cls_logits).float()
        return {'loss_cls': self.loss_cls(logits, labels, weights, avg_factor=avg_factor)}

    def loss_bbox_term(self, box_codes: List[Tensor], gt_index: List[Tensor], obj_ids: List[Tensor],
                       targets: List[FrameTargets], avg_factor: float) -> Dict[str, Tensor]:
        """``{'loss_bbox'}``: ``loss_bbox`` on matched queries and the ego query, weights ``code_weights * w_b``,
        zero where the GT code is not finite."""
        preds, gts, weights = [], [], []
        for codes, index, ids, target in zip(box_codes, gt_index, obj_ids, targets):
            rows = torch.nonzero(index >= 0).flatten()
            if target.ego_code is not None:
                ego_rows = torch.nonzero(ids == EGO_ID).flatten()
                gt_rows = torch.cat((target.codes[index[rows]], target.ego_code.expand(len(ego_rows), -1)))
                rows = torch.cat((rows, ego_rows))
            else:
                gt_rows = target.codes[index[rows]]
            preds.append(codes[rows])
            gts.append(gt_rows)
            weights.append(self.code_weights.expand(len(rows), -1) * target.weight)
        pred, gt, weight = torch.cat(preds).float(), torch.cat(gts).float(), torch.cat(weights)
        finite = torch.isfinite(gt)
        gt = torch.where(finite, gt, torch.zeros_like(gt))
        return {'loss_bbox': self.loss_bbox(pred, gt, weight * finite, avg_factor=avg_factor)}
