"""Runtime tracker: births, sleeps and deaths of track ids at inference.

Follows UniAD's ``RuntimeTrackerBase.update`` rule for rule, vectorised:

1. every query with ``score >= score_thresh`` has its miss counter reset to 0;
2. a free query (``obj_id == FREE_ID``) with ``score >= score_thresh`` is born with the next unused id (ids are
   given in query order, so the result is deterministic);
3. a live track (``obj_id >= 0``) with ``score < filter_score_thresh`` counts one miss; at ``miss_tolerance``
   consecutive misses it dies (``obj_id`` back to ``FREE_ID``; the head then drops the query).

Changed: the id counter is not kept inside the tracker but passed in and returned (it lives in ``TrackState``, one
per sample, restarted at 0 with every scene), so the tracker holds no state.
"""
from typing import Tuple

import torch
from torch import Tensor

from mmdet3d.registry import TASK_UTILS
from .instances import FREE_ID

MAX_BOXES_PER_SAMPLE = 500  # nuscenes-devkit TrackingEval refuses samples with more boxes


@TASK_UTILS.register_module('UniADRuntimeTracker')
class RuntimeTracker:
    """Stateless id bookkeeping of one sample's queries.

    Args:
        score_thresh (float): birth threshold, in ``[0, 1]``.
        filter_score_thresh (float): a live track below this score misses the frame, in ``[0, 1]``.
        miss_tolerance (int): consecutive misses after which a track dies, ``>= 1``.
        max_num (int): most tracks reported per frame (the highest scores; UniAD's ``max_num``), in
            ``[1, 500]``: the nuScenes tracking evaluation refuses a sample with more than 500 boxes.
    """

    def __init__(self, score_thresh: float = 0.4, filter_score_thresh: float = 0.35, miss_tolerance: int = 5,
                 max_num: int = 300) -> None:
        for name, value in (('score_thresh', score_thresh), ('filter_score_thresh', filter_score_thresh)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name} must be in [0, 1], got {value}')
        if miss_tolerance < 1:
            raise ValueError(f'miss_tolerance must be >= 1, got {miss_tolerance}')
        if not 1 <= max_num <= MAX_BOXES_PER_SAMPLE:
            raise ValueError(f'max_num must be in [1, {MAX_BOXES_PER_SAMPLE}] (the nuScenes evaluation limit of '
                             f'boxes per sample), got {max_num}')
        self.score_thresh, self.filter_score_thresh = score_thresh, filter_score_thresh
        self.miss_tolerance, self.max_num = miss_tolerance, max_num

    def output_indices(self, obj_ids: Tensor, scores: Tensor) -> Tensor:
        """Indices (ascending, long ``[M]``, ``M <= max_num``) of the tracks reported for a frame: live ids
        (``obj_id >= 0``) with ``score >= filter_score_thresh``, the ``max_num`` highest scores when there are more.
        """
        keep = ((obj_ids >= 0) & (scores >= self.filter_score_thresh)).nonzero().squeeze(1)
        if len(keep) > self.max_num:
            keep = keep[scores[keep].topk(self.max_num).indices].sort().values
        return keep

    def update(self, obj_ids: Tensor, scores: Tensor, disappear: Tensor,
               next_id: int) -> Tuple[Tensor, Tensor, int]:
        """Apply one frame of scores.

        Args:
            obj_ids (Tensor): ``[N]`` long, ``>= 0`` live ids, ``FREE_ID`` free queries, other negatives (the ego
                query) are left alone.
            scores (Tensor): ``[N]`` track scores in ``[0, 1]``.
            disappear (Tensor): ``[N]`` long, consecutive misses so far.
            next_id (int): the first unused id of this sample.

        Returns:
            tuple: new ``obj_ids`` ``[N]``, new ``disappear`` ``[N]`` and the new ``next_id``.
        """
        confident = scores >= self.score_thresh
        disappear = torch.where(confident, torch.zeros_like(disappear), disappear)
        born = (obj_ids == FREE_ID) & confident
        missed = (obj_ids >= 0) & (scores < self.filter_score_thresh)
        disappear = disappear + missed.long()
        dead = missed & (disappear >= self.miss_tolerance)
        new_ids = next_id + torch.cumsum(born.long(), dim=0) - 1
        obj_ids = torch.where(born, new_ids, obj_ids)
        obj_ids = torch.where(dead, torch.full_like(obj_ids, FREE_ID), obj_ids)
        return obj_ids, disappear, next_id + int(born.sum())
