"""Scene-aware distributed test sampler.

UniAD tests with a ``DistributedSampler`` that hands every rank one contiguous chunk of the dataset, so a scene that
straddles a chunk border is tracked in two halves with a fresh tracker state in the second half. The tracking
metrics then depend on the number of GPUs. ``SceneAwareSampler`` instead gives every scene, whole and in frame
order, to exactly one rank; scenes are balanced over the ranks by frame count with a deterministic greedy rule.
A model that resets its temporal state on a new ``scene_token`` therefore produces the same predictions for every
sample whatever the world size, and metrics that key their results by sample token (``NuScenesTrackingMetric``,
``MapIoUMetric``) give identical figures for 1, 2 or N processes.
"""
import logging
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Sequence, Sized, Tuple

from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from torch.utils.data import Sampler

from mmdet3d.registry import DATA_SAMPLERS

__all__ = ['SceneAwareSampler', 'group_indices_by_scene', 'balance_scenes']


def group_indices_by_scene(dataset: Sized) -> 'OrderedDict[str, List[int]]':
    """Group the dataset indices by scene, frames sorted by their index within the scene.

    Args:
        dataset: any dataset whose ``get_data_info(i)`` returns a dict with ``'scene_token'`` (str) and
            ``'frame_idx'`` (int, position of the sample in its scene, from 0) for ``0 <= i < len(dataset)``
            (``NuScenesTrackMapDataset``, ``GeoSplitDataset``).

    Returns:
        OrderedDict ``scene_token -> [dataset indices]``; scenes in the order of their first index in the dataset,
        the indices of one scene sorted by ``frame_idx``.

    Raises:
        TypeError: the dataset has no ``get_data_info``.
        KeyError: an info lacks ``'scene_token'`` or ``'frame_idx'``.
        ValueError: two indices of one scene share a ``frame_idx``.
    """
    if not callable(getattr(dataset, 'get_data_info', None)):
        raise TypeError(f'SceneAwareSampler needs a dataset with get_data_info(i) -> dict(scene_token=..., '
                        f'frame_idx=...), got {type(dataset).__name__}')
    frames: 'OrderedDict[str, List[Tuple[int, int]]]' = OrderedDict()
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        missing = [key for key in ('scene_token', 'frame_idx') if key not in info]
        if missing:
            raise KeyError(f'SceneAwareSampler: get_data_info({index}) of {type(dataset).__name__} lacks {missing}; '
                           f'the info pkl must come from tools/create_data.py (keys scene_token, frame_idx)')
        frames.setdefault(info['scene_token'], []).append((int(info['frame_idx']), index))
    grouped: 'OrderedDict[str, List[int]]' = OrderedDict()
    for scene_token, scene_frames in frames.items():
        scene_frames.sort()
        frame_ids = [frame for frame, _ in scene_frames]
        if len(set(frame_ids)) != len(frame_ids):
            raise ValueError(f'SceneAwareSampler: scene {scene_token} holds duplicate frame_idx values {frame_ids}; '
                             f'each sample of a scene must appear once in the test dataset')
        grouped[scene_token] = [index for _, index in scene_frames]
    return grouped


def balance_scenes(scene_sizes: Sequence[int], world_size: int) -> List[List[int]]:
    """Assign scenes to ranks, longest scene first, each to the least loaded rank (ties: lowest rank).

    This is the LPT rule: the heaviest rank carries at most 4/3 of the optimal load. It is deterministic, as it
    depends only on the scene sizes and their order.

    Args:
        scene_sizes: number of frames of each scene, in dataset order (all >= 1).
        world_size: number of ranks (>= 1).

    Returns:
        ``world_size`` lists of scene positions (indices into ``scene_sizes``), each sorted ascending, i.e. in
        dataset order.
    """
    if world_size < 1:
        raise ValueError(f'world_size must be >= 1, got {world_size}')
    loads = [0] * world_size
    assignment: List[List[int]] = [[] for _ in range(world_size)]
    for scene in sorted(range(len(scene_sizes)), key=lambda s: (-scene_sizes[s], s)):
        rank = min(range(world_size), key=lambda r: (loads[r], r))
        loads[rank] += scene_sizes[scene]
        assignment[rank].append(scene)
    return [sorted(scenes) for scenes in assignment]


@DATA_SAMPLERS.register_module('NexusFlowSceneAwareSampler')
class SceneAwareSampler(Sampler):
    """Test sampler: whole scenes in frame order per rank, balanced over ranks by frame count.

    Every dataset index is yielded exactly once over all ranks (no padding). The ranks get different numbers of
    samples; mmengine's test loop and ``collect_results`` accept that (results are gathered rank-interleaved and
    truncated to the dataset size, which never drops anything here because there is no padding). Metrics must
    therefore not depend on the order of the gathered results; ours key them by sample token.

    The test dataloader must use ``batch_size=1`` for models with per-scene temporal state: the sampler emits the
    frames of a scene consecutively, so a larger batch would put consecutive frames of one scene side by side.

    Args:
        dataset: the test dataset (see ``group_indices_by_scene`` for the required ``get_data_info`` keys).
        seed: accepted because ``Runner.build_dataloader`` passes it to every sampler; the order is deterministic
            and does not use it.
        rank: rank of this process; None -> ``mmengine.dist.get_dist_info()``.
        world_size: number of processes; None -> ``mmengine.dist.get_dist_info()``.

    Example config::

        test_dataloader = dict(batch_size=1, sampler=dict(type='NexusFlowSceneAwareSampler'), dataset=...)
    """

    def __init__(self,
                 dataset: Sized,
                 seed: Optional[int] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'SceneAwareSampler: rank must lie in [0, world_size), got rank={self.rank}, '
                             f'world_size={self.world_size}')
        self.dataset = dataset
        self.scenes = group_indices_by_scene(dataset)
        scene_tokens = list(self.scenes)
        assignment = balance_scenes([len(self.scenes[t]) for t in scene_tokens], self.world_size)
        self.rank_scenes: List[List[str]] = [[scene_tokens[s] for s in scenes] for scenes in assignment]
        self.indices: List[int] = [i for token in self.rank_scenes[self.rank] for i in self.scenes[token]]
        if not self.indices:
            print_log(f'SceneAwareSampler: rank {self.rank} of {self.world_size} gets no scene '
                      f'(the dataset has only {len(scene_tokens)} scenes)', logger='current', level=logging.WARNING)

    def rank_loads(self) -> Dict[int, int]:
        """Number of frames assigned to each rank: ``{rank: frames}``."""
        return {rank: sum(len(self.scenes[t]) for t in tokens) for rank, tokens in enumerate(self.rank_scenes)}

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
