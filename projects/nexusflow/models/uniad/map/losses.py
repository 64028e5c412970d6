"""Targets and losses of the map head (UniAD ``PansegformerHead.loss`` / ``loss_single_panoptic``).

Follows UniAD: focal classification + L1 + GIoU on every decoder layer (one-to-one Hungarian matching), the last
layer matched by :class:`FilterHungarianAssigner` whose selected queries go to the thing mask decoder, a second
matching among those with a dice cost, dice mask losses on the 2x up-sampled masks for the final and every
intermediate mask, stuff dice + presence focal losses, and the things/stuff ratio re-weighting. Changed:
- every term of a sample with ``has_map_gt=False`` is multiplied by 0 (never skipped); normalisers count the GT of
  labelled samples only (mmdet ``reduce_mean``, safe without distributed init);
- UniAD's mask-decoder box/class losses that it multiplies by 0 (``d{i}.loss_{cls,bbox,iou}_f``) are not computed;
- a stuff entry with an empty mask counts as absent (UniAD labels it present, which gives a constant dice of 1
  and teaches the presence classifier nothing); UniAD's ``2 *`` on the stuff focal loss is its weight 4.0 here.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmdet.utils import reduce_mean
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet3d.registry import MODELS, TASK_UTILS
from .structures import MapTargets

_BOX_COSTS = [dict(type='mmdet.FocalLossCost', weight=2.0),
              dict(type='mmdet.BBoxL1Cost', weight=5.0, box_format='xywh'),
              dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0)]
DEFAULT_LOSS_CLS = dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0)
DEFAULT_LOSS_BBOX = dict(type='mmdet.L1Loss', loss_weight=5.0)
DEFAULT_LOSS_IOU = dict(type='mmdet.GIoULoss', loss_weight=2.0)
DEFAULT_LOSS_MASK = dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, naive_dice=False, eps=1e-6,
                         loss_weight=2.0)
DEFAULT_LOSS_STUFF_CLS = dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=4.0)
DEFAULT_ASSIGNER = dict(type='mmdet.HungarianAssigner', match_costs=_BOX_COSTS)
DEFAULT_FILTER_ASSIGNER = dict(type='UniADFilterHungarianAssigner', match_costs=_BOX_COSTS, max_pos=3)
# UniAD's HungarianAssigner_multi_info doubles its configured class cost (2.0 -> 4.0); masks are logits here
DEFAULT_MASK_ASSIGNER = dict(type='mmdet.HungarianAssigner', match_costs=[
    dict(type='mmdet.FocalLossCost', weight=4.0), dict(type='mmdet.BBoxL1Cost', weight=5.0, box_format='xywh'),
    dict(type='mmdet.IoUCost', iou_mode='giou', weight=2.0), dict(type='mmdet.DiceCost', weight=2.0, pred_act=True)])


def canvas_factor(canvas_hw: Tuple[int, int], like: Tensor) -> Tensor:
    """``[1, 4]`` factor ``(W, H, W, H)`` that turns normalised boxes into canvas pixels."""
    height, width = canvas_hw
    return like.new_tensor([[width, height, width, height]])


def resize_masks(masks: Tensor, size: Tuple[int, int]) -> Tensor:
    """Bilinear resize of ``[N, H, W]`` masks or logits to ``[N, *size]`` (no-op at the same size)."""
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size))
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return F.interpolate(masks[:, None], size=size, mode='bilinear', align_corners=False)[:, 0]


class MapCriterion(BaseModule):
    """Assignment and loss terms of :class:`UniADMapHead`; each ``*_losses`` method returns a flat loss dict.

    Args:
        num_things_classes (int): Thing classes (divider, ped_crossing, boundary).
        loss_cls, loss_bbox, loss_iou, loss_mask, loss_stuff_cls (dict): mmdet loss configs.
        assigner (dict): One-to-one matcher of the auxiliary decoder layers.
        filter_assigner (dict): :class:`FilterHungarianAssigner` config of the last decoder layer.
        mask_assigner (dict): One-to-one matcher of the selected queries, with a mask cost.
        balance_things_stuff (bool): Scale thing losses by ``n_things / (n_things + n_stuff)`` and stuff losses by
            ``n_stuff / (n_things + n_stuff)`` (UniAD's "dynamic adjusting").
    """

    def __init__(self, num_things_classes: int = 3, loss_cls: dict = DEFAULT_LOSS_CLS,
                 loss_bbox: dict = DEFAULT_LOSS_BBOX, loss_iou: dict = DEFAULT_LOSS_IOU,
                 loss_mask: dict = DEFAULT_LOSS_MASK, loss_stuff_cls: dict = DEFAULT_LOSS_STUFF_CLS,
                 assigner: dict = DEFAULT_ASSIGNER, filter_assigner: dict = DEFAULT_FILTER_ASSIGNER,
                 mask_assigner: dict = DEFAULT_MASK_ASSIGNER, balance_things_stuff: bool = True) -> None:
        super().__init__()
        self.num_things_classes = num_things_classes
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_stuff_cls = MODELS.build(loss_stuff_cls)
        self.assigner = TASK_UTILS.build(assigner)
        self.filter_assigner = TASK_UTILS.build(filter_assigner)
        self.mask_assigner = TASK_UTILS.build(mask_assigner)
        self.balance_things_stuff = balance_things_stuff

    @staticmethod
    def normalizers(gts: Sequence[MapTargets], device: torch.device) -> Tuple[float, float]:
        """Numbers of thing GTs and of present stuff GTs of the labelled samples, averaged over ranks, >= 1."""
        counts = torch.tensor([sum(gt.num_things for gt in gts if gt.labelled),
                               sum(int(gt.stuff_present.sum()) for gt in gts if gt.labelled)],
                              dtype=torch.float32, device=device)
        counts = reduce_mean(counts).clamp(min=1)
        return float(counts[0]), float(counts[1])

    def _instances(self, cls_logits: Tensor, boxes: Tensor, gt: MapTargets) -> Tuple[InstanceData, InstanceData]:
        """Predictions (``scores`` logits, ``bboxes`` canvas pixels) and GT of one sample for the assigners."""
        factor = canvas_factor(gt.canvas_hw, boxes)
        preds = InstanceData(scores=cls_logits.detach(), bboxes=bbox_cxcywh_to_xyxy(boxes.detach()) * factor)
        return preds, InstanceData(labels=gt.thing_labels, bboxes=gt.thing_bboxes)

    def _box_targets(self, gt_inds: Tensor, gt: MapTargets, num_query: int) -> Tuple[Tensor, ...]:
        """Per-query class labels (``num_things_classes`` = background), label weights, normalised ``cxcywh``
        box targets and box weights of one sample; all weights are 0 for an unlabelled sample."""
        weight = float(gt.labelled)
        pos = (gt_inds > 0).nonzero().squeeze(1)
        matched = gt_inds[pos] - 1
        labels = gt_inds.new_full((num_query, ), self.num_things_classes)
        labels[pos] = gt.thing_labels[matched]
        targets = gt.thing_bboxes.new_zeros((num_query, 4))
        targets[pos] = bbox_xyxy_to_cxcywh(gt.thing_bboxes[matched] / canvas_factor(gt.canvas_hw, targets))
        box_weights = targets.new_zeros(num_query)
        box_weights[pos] = weight
        return labels, targets.new_full((num_query, ), weight), targets, box_weights

    def _box_losses(self, cls_logits: Tensor, boxes: Tensor, gt_inds: Sequence[Tensor],
                    gts: Sequence[MapTargets], num_pos: float) -> Dict[str, Tensor]:
        """Focal class, L1 box and GIoU losses of one decoder layer (``[B, Nq, *]`` inputs)."""
        num_query = boxes.shape[1]
        targets = [self._box_targets(inds, gt, num_query) for inds, gt in zip(gt_inds, gts)]
        labels, label_weights, box_targets, box_weights = (torch.cat(parts) for parts in zip(*targets))
        factors = torch.cat([canvas_factor(gt.canvas_hw, boxes).expand(num_query, 4) for gt in gts])
        boxes = boxes.flatten(0, 1)
        return dict(
            loss_cls=self.loss_cls(cls_logits.flatten(0, 1), labels, label_weights, avg_factor=num_pos),
            loss_bbox=self.loss_bbox(boxes, box_targets, box_weights[:, None].expand(-1, 4), avg_factor=num_pos),
            loss_iou=self.loss_iou(bbox_cxcywh_to_xyxy(boxes) * factors, bbox_cxcywh_to_xyxy(box_targets) * factors,
                                   box_weights, avg_factor=num_pos))

    def decoder_layer_losses(self, cls_logits: Tensor, boxes: Tensor, gts: Sequence[MapTargets],
                             num_pos: float) -> Dict[str, Tensor]:
        """``loss_cls, loss_bbox, loss_iou`` of an auxiliary decoder layer.

        Args:
            cls_logits (Tensor): ``[B, Nq, num_things]`` class logits.
            boxes (Tensor): ``[B, Nq, 4]`` boxes ``(cx, cy, w, h)`` in ``(0, 1)`` of the canvas.
            gts (list[MapTargets]): ``B`` targets.
            num_pos (float): Normaliser from :meth:`normalizers`.
        """
        gt_inds = []
        for b, gt in enumerate(gts):
            preds, gt_instances = self._instances(cls_logits[b], boxes[b], gt)
            gt_inds.append(self.assigner.assign(preds, gt_instances, img_meta=dict(img_shape=gt.canvas_hw)).gt_inds)
        return self._box_losses(cls_logits, boxes, gt_inds, gts, num_pos)

    def last_layer_losses(self, cls_logits: Tensor, boxes: Tensor, gts: Sequence[MapTargets],
                          num_pos: float) -> Tuple[Dict[str, Tensor], List[Tensor]]:
        """Losses of the last decoder layer (first filter round) and the queries selected for the mask decoder.

        Inputs as :meth:`decoder_layer_losses`. Returns the loss dict and ``B`` ascending LongTensors of query
        indices (``<= max_pos * K_b`` each, empty for unlabelled samples).
        """
        gt_inds, selected = [], []
        for b, gt in enumerate(gts):
            preds, gt_instances = self._instances(cls_logits[b], boxes[b], gt)
            result = self.filter_assigner.assign(preds, gt_instances, img_meta=dict(img_shape=gt.canvas_hw))
            gt_inds.append(result.gt_inds)
            selected.append(result.get_extra_property('selected_inds'))
        return self._box_losses(cls_logits, boxes, gt_inds, gts, num_pos), selected

    def _match_masks(self, mask_logits: Tensor, selected: Sequence[Tensor], cls_logits: Tensor, boxes: Tensor,
                     gts: Sequence[MapTargets], bev_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Match the selected queries to the thing GTs with the mask cost.

        Returns flat row indices ``[n]`` into ``mask_logits.flatten(0, 1)`` (``[B * Nsel, HW]``) and the matched GT
        masks ``[n, 2 * bev_h, 2 * bev_w]`` (bilinear-resized, as UniAD's loss resolution).
        """
        loss_hw = (2 * bev_hw[0], 2 * bev_hw[1])
        rows, targets = [mask_logits.new_zeros(0, dtype=torch.long)], [mask_logits.new_zeros((0, *loss_hw))]
        for b, (sel, gt) in enumerate(zip(selected, gts)):
            if sel.numel() == 0 or gt.num_things == 0:
                continue
            preds, gt_instances = self._instances(cls_logits[b, sel], boxes[b, sel], gt)
            preds.masks = mask_logits[b, :sel.numel()].detach().view(-1, *bev_hw)
            gt_instances.masks = resize_masks(gt.thing_masks, bev_hw)
            gt_inds = self.mask_assigner.assign(preds, gt_instances, img_meta=dict(img_shape=gt.canvas_hw)).gt_inds
            pos = (gt_inds > 0).nonzero().squeeze(1)
            rows.append(b * mask_logits.shape[1] + pos)
            targets.append(resize_masks(gt.thing_masks[gt_inds[pos] - 1], loss_hw))
        return torch.cat(rows), torch.cat(targets)

    def _dice(self, mask_logits: Tensor, targets: Tensor, weights: Tensor, bev_hw: Tuple[int, int],
              num_pos: float) -> Tensor:
        """Dice loss of ``[n, HW]`` logits, up-sampled 2x, against ``[n, 2h, 2w]`` targets with ``[n]`` weights."""
        logits = mask_logits.view(-1, 1, *bev_hw)
        logits = F.interpolate(logits, scale_factor=2.0, mode='bilinear', align_corners=False)[:, 0]
        return self.loss_mask(logits, targets, weights, avg_factor=num_pos)

    def thing_mask_losses(self, final_logits: Tensor, layer_logits: Tensor, selected: Sequence[Tensor],
                          cls_logits: Tensor, boxes: Tensor, gts: Sequence[MapTargets], num_pos: float,
                          bev_hw: Tuple[int, int]) -> Dict[str, Tensor]:
        """``loss_mask_things`` (final mask) and ``d{j}.loss_mask_things_f`` (mask-decoder block ``j``).

        Args:
            final_logits (Tensor): ``[B, Nsel, HW]`` thing mask logits of the selected queries (padded rows last).
            layer_logits (Tensor): ``[Lt, B, Nsel, HW]`` per-block mask logits.
            selected (list[Tensor]): query indices from :meth:`last_layer_losses`.
            cls_logits, boxes (Tensor): last decoder layer ``[B, Nq, num_things]`` / ``[B, Nq, 4]``.
            gts (list[MapTargets]): targets; num_pos (float): thing normaliser; bev_hw: ``(bev_h, bev_w)``.
        """
        rows, targets = self._match_masks(final_logits, selected, cls_logits, boxes, gts, bev_hw)
        weights = targets.new_ones(rows.numel())
        losses = dict(loss_mask_things=self._dice(final_logits.flatten(0, 1)[rows], targets, weights, bev_hw,
                                                  num_pos))
        for j, logits in enumerate(layer_logits):
            losses[f'd{j}.loss_mask_things_f'] = self._dice(logits.flatten(0, 1)[rows], targets, weights, bev_hw,
                                                            num_pos)
        return losses

    def stuff_losses(self, final_logits: Tensor, layer_logits: Tensor, layer_cls: Tensor,
                     gts: Sequence[MapTargets], num_pos: float, bev_hw: Tuple[int, int]) -> Dict[str, Tensor]:
        """``loss_mask_stuff``, ``d{j}.loss_mask_stuff_f`` and ``d{j}.loss_cls_stuff_f`` (presence focal loss).

        Args:
            final_logits (Tensor): ``[B, S, HW]`` stuff mask logits; layer_logits ``[Ls, B, S, HW]``.
            layer_cls (Tensor): ``[Ls, B, S, 1]`` presence logits of every stuff-decoder block.
            gts, num_pos, bev_hw: as :meth:`thing_mask_losses` (``num_pos`` is the stuff normaliser).
        """
        loss_hw = (2 * bev_hw[0], 2 * bev_hw[1])
        targets = torch.cat([resize_masks(gt.stuff_masks, loss_hw) for gt in gts])
        present = torch.cat([gt.stuff_present for gt in gts])
        sample_weights = torch.cat([targets.new_full(gt.stuff_present.shape, float(gt.labelled)) for gt in gts])
        mask_weights = sample_weights * present.float()
        labels = (~present).long()  # 0 = present, 1 = background of the one-class focal loss
        losses = dict(loss_mask_stuff=self._dice(final_logits.flatten(0, 1), targets, mask_weights, bev_hw, num_pos))
        for j, (logits, cls) in enumerate(zip(layer_logits, layer_cls)):
            losses[f'd{j}.loss_mask_stuff_f'] = self._dice(logits.flatten(0, 1), targets, mask_weights, bev_hw,
                                                           num_pos)
            losses[f'd{j}.loss_cls_stuff_f'] = self.loss_stuff_cls(cls.flatten(0, 1), labels, sample_weights,
                                                                   avg_factor=num_pos)
        return losses

    def balance(self, thing_losses: Dict[str, Tensor], stuff_losses: Dict[str, Tensor], num_things: float,
                num_stuff: float) -> Dict[str, Tensor]:
        """Merge thing and stuff losses, scaled by their GT shares when ``balance_things_stuff``."""
        things_ratio = stuff_ratio = 1.0
        if self.balance_things_stuff:
            things_ratio = num_things / (num_things + num_stuff)
            stuff_ratio = num_stuff / (num_things + num_stuff)
        losses = {key: value * things_ratio for key, value in thing_losses.items()}
        losses.update({key: value * stuff_ratio for key, value in stuff_losses.items()})
        return losses
