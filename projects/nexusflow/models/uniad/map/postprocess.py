"""Panoptic post-processing of the map head (UniAD ``PansegformerHead.get_bboxes``, Panoptic SegFormer's
mask-wise merging).

Things: each candidate's score is multiplied by the square of its mask quality (mean probability over its
thresholded mask); candidates are visited by descending score and pasted onto the free pixels unless their score is
below ``quality_threshold_things``, their mask is empty, or more than ``overlap_threshold_things`` of it is already
taken. Changed from UniAD: occupancy is tracked with instance ids (UniAD writes the class label, so divider pixels,
label 0, never count as taken), and only the kept instances are returned.
Stuff: score = presence probability x quality^2. The semantic stuff channel (drivable) is the thresholded stuff
mask whatever its score, exactly UniAD's drivable output (UniAD computes a stuff score but never uses it; the mask
is not cut by things either, since lane markings lie on the drivable area). The two stuff thresholds act, as in
Panoptic SegFormer, on the ``panoptic`` id map only: a stuff segment enters it (on its free pixels) when its score
reaches ``quality_threshold_stuff`` and at most ``overlap_threshold_stuff`` of it is taken by things.
"""
from typing import Dict, Tuple

import torch
from torch import Tensor


def mask_quality(probs: Tensor, mask_threshold: float) -> Tensor:
    """``[N]`` mean probability inside each thresholded mask: ``sum(p * (p > t)) / (count(p > t) + 1)``.

    Args:
        probs (Tensor): ``[N, H, W]`` mask probabilities in ``[0, 1]``.
        mask_threshold (float): probability above which a pixel belongs to the mask.
    """
    binary = (probs > mask_threshold).float()
    return (probs * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1)


def paste_things(probs: Tensor, scores: Tensor, labels: Tensor, quality_threshold: float,
                 overlap_threshold: float, mask_threshold: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Non-overlapping thing instances by descending score (see the module docstring).

    Args:
        probs (Tensor): ``[N, H, W]`` candidate mask probabilities.
        scores (Tensor): ``[N]`` candidate scores (already multiplied by the quality).
        labels (LongTensor): ``[N]`` candidate classes.
        quality_threshold, overlap_threshold, mask_threshold (float): UniAD's test thresholds.

    Returns:
        tuple: ``masks`` bool ``[n, H, W]`` (pasted pixels), ``labels`` ``[n]``, ``scores`` ``[n]`` and the
        ``panoptic`` id map long ``[H, W]`` (0 free, ``i + 1`` instance ``i``).
    """
    panoptic = torch.zeros(probs.shape[-2:], dtype=torch.long, device=probs.device)
    order = torch.sort(scores, descending=True, stable=True)[1]
    kept, kept_masks = [], []
    for idx in order.tolist():
        if float(scores[idx]) < quality_threshold:
            break
        mask = probs[idx] > mask_threshold
        area = int(mask.sum())
        if area == 0 or int((mask & (panoptic > 0)).sum()) / area > overlap_threshold:
            continue
        mask = mask & (panoptic == 0)
        panoptic[mask] = len(kept) + 1
        kept.append(idx)
        kept_masks.append(mask)
    index = torch.tensor(kept, dtype=torch.long, device=probs.device)
    masks = torch.stack(kept_masks) if kept_masks else probs.new_zeros((0, *probs.shape[-2:]), dtype=torch.bool)
    return masks, labels[index], scores[index], panoptic


def paste_stuff(probs: Tensor, scores: Tensor, panoptic: Tensor, quality_threshold: float,
                overlap_threshold: float, mask_threshold: float) -> Tensor:
    """Semantic stuff masks ``[S, H, W]`` bool (``probs > mask_threshold``); adds stuff to ``panoptic`` in place.

    Stuff ``s`` enters the panoptic map as id ``n_things + 1 + s`` on the free pixels when
    ``scores[s] >= quality_threshold``, its mask is not empty and at most ``overlap_threshold`` of it is taken.
    """
    num_instances = int(panoptic.max())
    semantic = probs > mask_threshold
    for s in range(probs.shape[0]):
        area = int(semantic[s].sum())
        if float(scores[s]) < quality_threshold or area == 0:
            continue
        taken = panoptic > 0
        if int((semantic[s] & taken).sum()) / area <= overlap_threshold:
            panoptic[semantic[s] & ~taken] = num_instances + 1 + s
    return semantic


def panoptic_postprocess(thing_probs: Tensor, thing_scores: Tensor, thing_labels: Tensor, stuff_probs: Tensor,
                         stuff_presence: Tensor, num_things_classes: int, quality_threshold_things: float = 0.1,
                         quality_threshold_stuff: float = 0.25, overlap_threshold_things: float = 0.4,
                         overlap_threshold_stuff: float = 0.2, mask_threshold: float = 0.5) -> Dict:
    """Semantic and panoptic map prediction of one sample.

    Args:
        thing_probs (Tensor): ``[N, H, W]`` candidate thing mask probabilities on the canvas.
        thing_scores (Tensor): ``[N]`` class probabilities of the candidates (sigmoid, before the quality).
        thing_labels (LongTensor): ``[N]`` candidate classes in ``[0, num_things_classes)``.
        stuff_probs (Tensor): ``[S, H, W]`` stuff mask probabilities on the canvas.
        stuff_presence (Tensor): ``[S]`` stuff presence probabilities.
        num_things_classes (int): thing classes (channels before the stuff channels in ``masks``).
        quality_threshold_things, quality_threshold_stuff, overlap_threshold_things, overlap_threshold_stuff,
        mask_threshold (float): test thresholds (see the module docstring).

    Returns:
        dict: ``masks`` bool ``[num_things_classes + S, H, W]`` (semantic: divider, ped_crossing, boundary,
        drivable), ``thing_masks`` bool ``[n, H, W]``, ``thing_labels`` long ``[n]``, ``thing_scores`` ``[n]``,
        ``stuff_scores`` ``[S]``, ``drivable_score`` float (score of the first stuff class) and ``panoptic`` long
        ``[H, W]`` (0 void, ``1..n`` thing instances, ``n + 1 + s`` stuff ``s``).
    """
    scores = thing_scores * mask_quality(thing_probs, mask_threshold) ** 2
    thing_masks, labels, scores, panoptic = paste_things(thing_probs, scores, thing_labels, quality_threshold_things,
                                                         overlap_threshold_things, mask_threshold)
    stuff_scores = stuff_presence * mask_quality(stuff_probs, mask_threshold) ** 2
    stuff_masks = paste_stuff(stuff_probs, stuff_scores, panoptic, quality_threshold_stuff,
                              overlap_threshold_stuff, mask_threshold)
    semantic = thing_masks.new_zeros((num_things_classes, *thing_probs.shape[-2:]))
    for cls in range(num_things_classes):
        semantic[cls] = thing_masks[labels == cls].any(0)
    return dict(masks=torch.cat([semantic, stuff_masks]), thing_masks=thing_masks, thing_labels=labels,
                thing_scores=scores, stuff_scores=stuff_scores, drivable_score=float(stuff_scores[0]),
                panoptic=panoptic)
