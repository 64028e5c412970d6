"""Per-sample map targets read from ``Det3DDataSample.gt_map_instances`` (README "Per-frame data sample")."""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
from torch import Tensor


@dataclass
class MapTargets:
    """Map ground truth of one sample, split into things and stuff.

    Attributes:
        labelled (bool): ``metainfo['has_map_gt']``; an unlabelled sample carries empty targets and every loss
            term of it is multiplied by 0.
        thing_labels (LongTensor): ``[K]`` in ``[0, num_things)`` (0 divider, 1 ped_crossing, 2 boundary).
        thing_bboxes (Tensor): ``[K, 4]`` float pixel boxes ``x1, y1, x2, y2`` on the canvas (``x`` = column).
        thing_masks (Tensor): ``[K, H, W]`` float in ``{0, 1}``.
        stuff_masks (Tensor): ``[S, H, W]`` float in ``{0, 1}``, one per stuff class (zeros when absent).
        stuff_present (BoolTensor): ``[S]``, the stuff entry exists and its mask is not empty.
    """
    labelled: bool
    thing_labels: Tensor
    thing_bboxes: Tensor
    thing_masks: Tensor
    stuff_masks: Tensor
    stuff_present: Tensor

    @property
    def canvas_hw(self) -> Tuple[int, int]:
        """``(H, W)`` of the canvas the masks and boxes are drawn on."""
        return tuple(self.stuff_masks.shape[-2:])

    @property
    def num_things(self) -> int:
        return int(self.thing_labels.numel())


def empty_targets(num_stuff: int, canvas_hw: Tuple[int, int], device: torch.device) -> MapTargets:
    """Targets of an unlabelled sample: no things, no stuff."""
    return MapTargets(False, torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, 4, device=device),
                      torch.zeros(0, *canvas_hw, device=device), torch.zeros(num_stuff, *canvas_hw, device=device),
                      torch.zeros(num_stuff, dtype=torch.bool, device=device))


def _check_instances(gt, index: int, num_classes: int) -> None:
    """Raise ``ValueError``/``KeyError`` when ``gt_map_instances`` of sample ``index`` breaks the contract."""
    for key in ('labels', 'bboxes', 'masks'):
        if key not in gt:
            raise KeyError(f'sample {index}: gt_map_instances needs labels, bboxes and masks; missing {key!r}')
    num = len(gt.labels)
    if gt.masks.dim() != 3 or gt.masks.shape[0] != num or tuple(gt.bboxes.shape) != (num, 4):
        raise ValueError(f'sample {index}: expected labels [K], bboxes [K, 4], masks [K, H, W]; got '
                         f'{tuple(gt.labels.shape)}, {tuple(gt.bboxes.shape)}, {tuple(gt.masks.shape)}')
    if num and (int(gt.labels.min()) < 0 or int(gt.labels.max()) >= num_classes):
        raise ValueError(f'sample {index}: map labels must lie in [0, {num_classes}), got {gt.labels.tolist()}')


def sample_targets(sample, index: int, num_things: int, num_stuff: int, canvas_hw: Tuple[int, int],
                   device: torch.device) -> MapTargets:
    """:class:`MapTargets` of one ``Det3DDataSample``.

    Things are the entries with ``label < num_things``; stuff entry ``label = num_things + s`` fills row ``s`` of
    ``stuff_masks``. A sample whose ``metainfo['has_map_gt']`` is ``False`` gets :func:`empty_targets` whatever it
    carries; a missing flag counts as labelled.
    """
    if not sample.metainfo.get('has_map_gt', True):
        return empty_targets(num_stuff, canvas_hw, device)
    if 'gt_map_instances' not in sample:
        raise KeyError(f'sample {index} has has_map_gt=True but no gt_map_instances; the map GT transform must '
                       'run in the pipeline (or set has_map_gt=False)')
    gt = sample.gt_map_instances
    _check_instances(gt, index, num_things + num_stuff)
    labels = gt.labels.to(device=device, dtype=torch.long)
    masks = gt.masks.to(device=device, dtype=torch.float32)
    is_thing = labels < num_things
    stuff_ids = labels[~is_thing] - num_things
    if stuff_ids.unique().numel() != stuff_ids.numel():
        raise ValueError(f'sample {index}: expected at most one entry per stuff class, got stuff labels '
                         f'{(stuff_ids + num_things).tolist()}')
    stuff_masks = masks.new_zeros((num_stuff, *masks.shape[-2:]))
    stuff_masks[stuff_ids] = masks[~is_thing]
    stuff_present = stuff_masks.flatten(1).sum(1) > 0
    return MapTargets(True, labels[is_thing], gt.bboxes.to(device=device, dtype=torch.float32)[is_thing],
                      masks[is_thing], stuff_masks, stuff_present)


def batch_targets(samples: Sequence, num_things: int, num_stuff: int, canvas_hw: Tuple[int, int],
                  device: torch.device) -> List[MapTargets]:
    """:func:`sample_targets` of every sample of the batch."""
    return [sample_targets(sample, i, num_things, num_stuff, canvas_hw, device) for i, sample in enumerate(samples)]
