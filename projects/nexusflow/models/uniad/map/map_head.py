"""UniAD stage-1 map head (MapFormer): Panoptic-SegFormer style panoptic segmentation of the BEV.

Follows UniAD ``dense_heads/panseg_head.py`` (``PansegformerHead``): deformable transformer over the BEV with
``num_query`` thing queries and box refinement, a thing mask decoder on the queries picked by the filter
matcher (training) or the top-scoring queries (test), a stuff mask decoder with one query per stuff class, and the
panoptic post-processing. ``compat='uniad'`` (set by the detector's ``compat``) builds the transformer and the mask
decoders with the behaviours the official weights rely on (``uniad_compat.py``, ``mask_head.py``). Changed: one BEV
level (issue #108), batched over ``B >= 1`` (UniAD supports one sample),
partial labels (``has_map_gt``), and the differences listed in ``losses.py``, ``mask_head.py`` and
``postprocess.py``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule, bias_init_with_prob
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ....core.head_tap import PredictionTap
from .losses import (DEFAULT_ASSIGNER, DEFAULT_FILTER_ASSIGNER, DEFAULT_LOSS_BBOX, DEFAULT_LOSS_CLS,
                     DEFAULT_LOSS_IOU, DEFAULT_LOSS_MASK, DEFAULT_LOSS_STUFF_CLS, DEFAULT_MASK_ASSIGNER,
                     MapCriterion)
from .postprocess import panoptic_postprocess
from .structures import batch_targets
from .uniad_compat import COMPAT_MODES, probability_mask_losses

DEFAULT_TEST_CFG = dict(quality_threshold_things=0.1, quality_threshold_stuff=0.25, overlap_threshold_things=0.4,
                        overlap_threshold_stuff=0.2, mask_threshold=0.5)


def build_part(default_type: str, cfg: dict, **head_args) -> nn.Module:
    """``MODELS.build`` of a sub-module config whose ``type`` defaults to ``default_type``; ``head_args`` (set by
    the head, e.g. ``embed_dims``) must not appear in ``cfg``."""
    clashes = sorted(set(cfg) & set(head_args))
    if clashes:
        raise ValueError(f'{clashes} of {default_type} are set by UniADMapHead; remove them from its config')
    return MODELS.build(dict(dict(type=default_type), **cfg, **head_args))


def gather_queries(states: Tensor, selected: Sequence[Tensor]) -> Tensor:
    """``[B, Nsel, C]`` rows ``selected[b]`` of ``states[b]`` (``[B, Nq, C]``), zero-padded to
    ``Nsel = max(1, max_b len(selected[b]))`` so that the mask decoder always runs (DDP sees every parameter)."""
    num_sel = max([1] + [int(sel.numel()) for sel in selected])
    index = states.new_zeros((states.shape[0], num_sel), dtype=torch.long)
    valid = states.new_zeros((states.shape[0], num_sel, 1))
    for b, sel in enumerate(selected):
        index[b, :sel.numel()] = sel
        valid[b, :sel.numel()] = 1
    return torch.gather(states, 1, index[..., None].expand(-1, -1, states.shape[-1])) * valid


@MODELS.register_module()
class UniADMapHead(BaseModule):
    """Map head: thing queries (divider, ped_crossing, boundary) and stuff (drivable) masks on the BEV canvas.

    Args:
        bev_h, bev_w (int): BEV grid rows / columns.
        embed_dims (int): Channels ``C`` of the BEV features and of the head.
        num_query (int): Thing queries (UniAD: 300).
        num_things_classes (int): Thing classes (3).
        num_stuff_classes (int): Stuff classes (1: drivable).
        canvas_size (tuple[int, int], optional): ``(H, W)`` of the predicted masks; ``None`` -> ``(bev_h, bev_w)``.
            GT on another canvas is resized for the losses, predictions are resized to it.
        transformer (dict): :class:`MapTransformer` kwargs (``type`` optional).
        thing_mask_head, stuff_mask_head (dict): :class:`MapMaskDecoder` kwargs (``type`` optional).
        loss_cls, loss_bbox, loss_iou, loss_mask, loss_stuff_cls (dict): mmdet loss configs (UniAD weights
            2.0 / 5.0 / 2.0 / 2.0 / 2 x 2.0).
        assigner, filter_assigner, mask_assigner (dict): matcher configs (see :class:`MapCriterion`).
        balance_things_stuff (bool): UniAD's things/stuff loss ratio.
        test_cfg (dict): thresholds of :func:`panoptic_postprocess`.
        use_cuda_kernel (bool): deformable attention kernel on CUDA tensors.
        compat (str, optional): ``None`` or ``'uniad'``: the transformer's 4-level attentions on the one BEV level
            and the mask decoders' ReLU masks with the position added into the query (UniAD's, for its weights).
            Masks are then probabilities as they are (no sigmoid in losses, matching and prediction; the dice loss
            gets ``activate=False`` and the matcher's ``DiceCost`` ``pred_act=False``).
        init_cfg (dict, optional): mmengine init config.

    Loss keys (``L`` decoder layers, ``Lt`` / ``Ls`` thing / stuff mask-decoder blocks): ``loss_cls``,
    ``loss_bbox``, ``loss_iou`` (last layer), ``d{i}.loss_cls``, ``d{i}.loss_bbox``, ``d{i}.loss_iou``
    (``i < L - 1``), ``loss_mask_things``, ``d{j}.loss_mask_things_f`` (``j < Lt``), ``loss_mask_stuff``,
    ``d{j}.loss_mask_stuff_f``, ``d{j}.loss_cls_stuff_f`` (``j < Ls``).
    """

    def __init__(self, bev_h: int = 200, bev_w: int = 200, embed_dims: int = 256, num_query: int = 300,
                 num_things_classes: int = 3, num_stuff_classes: int = 1,
                 canvas_size: Optional[Tuple[int, int]] = None,
                 transformer: dict = dict(num_encoder_layers=6, num_decoder_layers=6, num_heads=8, num_points=4,
                                          ffn_dims=512, dropout=0.1),
                 thing_mask_head: dict = dict(num_layers=4),
                 stuff_mask_head: dict = dict(num_layers=6, self_attn=True),
                 loss_cls: dict = DEFAULT_LOSS_CLS, loss_bbox: dict = DEFAULT_LOSS_BBOX,
                 loss_iou: dict = DEFAULT_LOSS_IOU, loss_mask: dict = DEFAULT_LOSS_MASK,
                 loss_stuff_cls: dict = DEFAULT_LOSS_STUFF_CLS, assigner: dict = DEFAULT_ASSIGNER,
                 filter_assigner: dict = DEFAULT_FILTER_ASSIGNER, mask_assigner: dict = DEFAULT_MASK_ASSIGNER,
                 balance_things_stuff: bool = True, test_cfg: dict = DEFAULT_TEST_CFG,
                 use_cuda_kernel: bool = True, compat: Optional[str] = None, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('bev_h', bev_h), ('bev_w', bev_w), ('num_query', num_query),
                            ('num_things_classes', num_things_classes), ('num_stuff_classes', num_stuff_classes)):
            if value < 1:
                raise ValueError(f'{name} must be >= 1, got {value}')
        if compat not in COMPAT_MODES:
            raise ValueError(f'UniADMapHead: compat must be one of {COMPAT_MODES}, got {compat!r}')
        if compat == 'uniad':
            loss_mask, mask_assigner = probability_mask_losses(loss_mask, mask_assigner)
        self.compat = compat
        self.bev_hw = (bev_h, bev_w)
        self.embed_dims = embed_dims
        self.num_query = num_query
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.canvas_size = tuple(canvas_size) if canvas_size is not None else self.bev_hw
        self.test_cfg = self._merge_test_cfg(test_cfg)
        self.transformer = build_part('UniADMapTransformer', transformer, embed_dims=embed_dims,
                                      use_cuda_kernel=use_cuda_kernel, compat=compat)
        self.thing_mask_head = build_part('UniADMapMaskDecoder', thing_mask_head, embed_dims=embed_dims, compat=compat)
        self.stuff_mask_head = build_part('UniADMapMaskDecoder', stuff_mask_head, embed_dims=embed_dims, compat=compat)
        num_layers = len(self.transformer.decoder.layers)
        self.query_embedding = nn.Embedding(num_query, 2 * embed_dims)
        self.stuff_query = nn.Embedding(num_stuff_classes, 2 * embed_dims)
        self.cls_branches = nn.ModuleList([nn.Linear(embed_dims, num_things_classes) for _ in range(num_layers)])
        self.cls_stuff_branches = nn.ModuleList([nn.Linear(embed_dims, 1)
                                                 for _ in range(len(self.stuff_mask_head.blocks))])
        self.criterion = MapCriterion(num_things_classes, loss_cls=loss_cls, loss_bbox=loss_bbox, loss_iou=loss_iou,
                                      loss_mask=loss_mask, loss_stuff_cls=loss_stuff_cls, assigner=assigner,
                                      filter_assigner=filter_assigner, mask_assigner=mask_assigner,
                                      balance_things_stuff=balance_things_stuff)
        # Tap point for plug-ins (README "Model interfaces"): ``semantic`` only on request, see ``_tap_semantic``.
        self.pred_tap = PredictionTap(on_request=('semantic', ))

    @staticmethod
    def _merge_test_cfg(test_cfg: dict) -> dict:
        unknown = set(test_cfg) - set(DEFAULT_TEST_CFG)
        if unknown:
            raise KeyError(f'unknown test_cfg keys {sorted(unknown)}; expected a subset of {sorted(DEFAULT_TEST_CFG)}')
        return dict(DEFAULT_TEST_CFG, **test_cfg)

    def init_weights(self) -> None:
        """Children's own init (transformer, mask decoders), then UniAD's class-bias prior of 0.01."""
        super().init_weights()
        bias = bias_init_with_prob(0.01)
        for branch in list(self.cls_branches) + list(self.cls_stuff_branches):
            nn.init.constant_(branch.bias, bias)

    def _check_inputs(self, bev: Tensor, samples: Sequence) -> None:
        expected = (self.bev_hw[0] * self.bev_hw[1], self.embed_dims)
        if bev.dim() != 3 or tuple(bev.shape[1:]) != expected:
            raise ValueError(f'bev must be [B, {expected[0]}, {expected[1]}] (bev_h * bev_w = {self.bev_hw[0]} * '
                             f'{self.bev_hw[1]}, embed_dims), got {tuple(bev.shape)}')
        if len(samples) != bev.shape[0]:
            raise ValueError(f'got {len(samples)} data samples for a batch of {bev.shape[0]} BEV maps')

    def forward(self, bev: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Run the transformer and the class branches.

        Args:
            bev (Tensor): ``[B, bev_h * bev_w, C]`` float BEV features, batch-first, row-major (row ``i`` <-> LiDAR
                ``y``, column ``j`` <-> LiDAR ``x``; README contract).

        Returns:
            tuple[Tensor, Tensor, Tensor, Tensor]: ``memory`` ``[B, HW, C]``, thing ``states`` ``[L, B, Nq, C]``,
            class logits ``[L, B, Nq, num_things_classes]`` and boxes ``[L, B, Nq, 4]`` (``cx, cy, w, h``
            normalised to ``(0, 1)`` of the canvas, ``x`` along the columns).
        """
        memory, states, boxes = self.transformer(bev, self.query_embedding.weight, self.bev_hw)
        cls_logits = torch.stack([branch(state) for branch, state in zip(self.cls_branches, states)])
        return memory, states, cls_logits, boxes

    def _stuff_forward(self, memory: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Stuff masks: final logits ``[B, S, HW]``, per-block logits ``[Ls, B, S, HW]``, presence logits
        ``[Ls, B, S, 1]``."""
        query, query_pos = self.stuff_query.weight.split(self.embed_dims, dim=1)
        bs = memory.shape[0]
        final, layer_logits, layer_queries = self.stuff_mask_head(
            query.unsqueeze(0).expand(bs, -1, -1), memory, query_pos.unsqueeze(0).expand(bs, -1, -1))
        presence = torch.stack([branch(q) for branch, q in zip(self.cls_stuff_branches, layer_queries)])
        return final, layer_logits, presence

    def loss(self, bev: Tensor, samples: Sequence) -> Dict[str, Tensor]:
        """Map losses of a batch (keys in the class docstring; unprefixed).

        Args:
            bev (Tensor): ``[B, bev_h * bev_w, C]`` BEV features (see :meth:`forward`).
            samples (list[Det3DDataSample]): ``B`` samples with ``gt_map_instances`` (``labels`` long ``[K]``,
                ``bboxes`` float ``[K, 4]`` pixel ``x1 y1 x2 y2``, ``masks`` uint8 ``[K, H, W]``) and
                ``metainfo['has_map_gt']``; an unlabelled sample contributes exactly 0 to every loss.

        Returns:
            dict[str, Tensor]: scalar losses; the same keys whatever the labels.
        """
        self._check_inputs(bev, samples)
        gts = batch_targets(samples, self.num_things_classes, self.num_stuff_classes, self.canvas_size, bev.device)
        memory, states, cls_logits, boxes = self(bev)
        num_things, num_stuff = self.criterion.normalizers(gts, bev.device)
        thing_losses = {}
        for layer in range(len(states) - 1):
            layer_losses = self.criterion.decoder_layer_losses(cls_logits[layer], boxes[layer], gts, num_things)
            thing_losses.update({f'd{layer}.{key}': value for key, value in layer_losses.items()})
        last_losses, selected = self.criterion.last_layer_losses(cls_logits[-1], boxes[-1], gts, num_things)
        thing_losses.update(last_losses)
        final_logits, layer_logits, _ = self.thing_mask_head(gather_queries(states[-1], selected), memory)
        thing_losses.update(self.criterion.thing_mask_losses(final_logits, layer_logits, selected, cls_logits[-1],
                                                             boxes[-1], gts, num_things, self.bev_hw))
        stuff_final, stuff_layers, presence = self._stuff_forward(memory)
        stuff_losses = self.criterion.stuff_losses(stuff_final, stuff_layers, presence, gts, num_stuff, self.bev_hw)
        self._tap_semantic(memory, states[-1], cls_logits[-1], stuff_final)
        return self.criterion.balance(thing_losses, stuff_losses, num_things, num_stuff)

    def _tap_semantic(self, memory: Tensor, states: Tensor, cls_logits: Tensor, stuff_logits: Tensor) -> None:
        """Call ``pred_tap`` on ``{'semantic': [B, T + S, H, W]}``, soft per-class probabilities on the canvas.

        Things: ``max_q sigmoid(cls_logits[q, c]) * mask_q`` over all ``Nq`` queries (their masks from one extra
        thing-mask-decoder pass); stuff: the sigmoid of the stuff masks (masks as in :meth:`_to_canvas`: under
        ``compat='uniad'`` non-negative, not bounded by 1). Differentiable w.r.t. the head. Runs only when a plug-in
        requested ``semantic`` from ``pred_tap`` at build time (the extra pass costs nothing otherwise).
        """
        if not self.pred_tap.requested('semantic'):
            return
        thing_probs = self._to_canvas(self.thing_mask_head(states, memory)[0])  # [B, Nq, H, W]
        scores = cls_logits.sigmoid()  # [B, Nq, T]
        things = [(scores[..., c, None, None] * thing_probs).amax(dim=1) for c in range(scores.shape[-1])]
        self.pred_tap(dict(semantic=torch.cat([torch.stack(things, 1), self._to_canvas(stuff_logits)], dim=1)))

    def _to_canvas(self, masks: Tensor) -> Tensor:
        """``[B, N, HW]`` BEV masks -> ``[B, N, H, W]`` probabilities on the canvas: bilinear on the logits, then
        the sigmoid; under ``compat='uniad'`` bilinear on the ReLU masks, which are the probabilities (UniAD)."""
        masks = masks.view(masks.shape[0], masks.shape[1], *self.bev_hw)
        if self.canvas_size != self.bev_hw:
            masks = F.interpolate(masks, size=self.canvas_size, mode='bilinear', align_corners=False)
        return masks if self.compat == 'uniad' else masks.sigmoid()

    def predict(self, bev: Tensor, samples: Sequence) -> List[dict]:
        """Semantic and panoptic map prediction.

        Args:
            bev (Tensor): ``[B, bev_h * bev_w, C]`` BEV features (see :meth:`forward`).
            samples (list[Det3DDataSample]): ``B`` samples (only their number is used).

        Returns:
            list[dict]: ``B`` dicts from :func:`panoptic_postprocess` on the canvas ``(H, W)``: ``masks`` bool
            ``[num_things + num_stuff, H, W]`` (divider, ped_crossing, boundary, drivable), ``thing_masks`` bool
            ``[n, H, W]``, ``thing_labels`` ``[n]``, ``thing_scores`` ``[n]``, ``stuff_scores`` ``[S]``,
            ``drivable_score`` float, ``panoptic`` long ``[H, W]``.
        """
        self._check_inputs(bev, samples)
        memory, states, cls_logits, _ = self(bev)
        scores, flat_index = cls_logits[-1].sigmoid().flatten(1).topk(self.num_query, dim=1)  # [B, Nq]
        labels = flat_index % self.num_things_classes
        query_index = flat_index // self.num_things_classes
        queries = torch.gather(states[-1], 1, query_index[..., None].expand(-1, -1, self.embed_dims))
        thing_probs = self._to_canvas(self.thing_mask_head(queries, memory)[0])
        stuff_final, _, presence = self._stuff_forward(memory)
        stuff_probs = self._to_canvas(stuff_final)
        stuff_presence = presence[-1].squeeze(-1).sigmoid()  # [B, S]
        self._tap_semantic(memory, states[-1], cls_logits[-1], stuff_final)
        return [panoptic_postprocess(thing_probs[b], scores[b], labels[b], stuff_probs[b], stuff_presence[b],
                                     self.num_things_classes, **self.test_cfg) for b in range(bev.shape[0])]
