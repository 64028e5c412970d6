"""``TrackState``: all cross-frame state of the track head for ``B`` sequences, in one object.

UniAD scatters this over ``self.test_track_instances``, ``self.l2g_r_mat``, ``self.l2g_t``, ``self.timestamp``,
``self.scene_token`` and the tracker's ``max_obj_id``; here it is one value that ``predict`` takes and returns.
Fresh queries are not stored: they are rebuilt from the head's embedding every frame, so a state created before a
checkpoint is loaded stays valid.

Track ids restart at 0 with every scene (``reset``): a scene's ids depend only on that scene, never on what the
process evaluated before, so the results do not change with the number of test processes or the scene order.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Union

import numpy as np
import torch
from torch import Tensor

from ....core.frames import relative_pose
from .instances import TrackInstances


@dataclass
class TrackState:
    """Per-sample state, every list of length ``B``.

    Attributes:
        tracks (list[TrackInstances | None]): the queries carried from the previous frame (live and sleeping
            tracks, plus false-positive queries during training), ``None`` before the first frame of a sequence.
        lidar2global (list[Tensor | None]): float64 ``[4, 4]`` pose of the previous frame's LiDAR, on ``device``.
        timestamp (list[float | None]): time of the previous frame, seconds.
        scene_token (list[str | None]): scene of the previous frame.
        next_id (list[int]): first unused track id of each sample slot within its current scene; ``reset``
            restarts it at 0, so ids are unique within a scene and never reused there.
        device (torch.device): device of the poses.
    """
    tracks: List[Optional[TrackInstances]]
    lidar2global: List[Optional[Tensor]]
    timestamp: List[Optional[float]]
    scene_token: List[Optional[str]]
    next_id: List[int]
    device: torch.device = field(default_factory=lambda: torch.device('cpu'))

    @classmethod
    def empty(cls, batch_size: int, device: Optional[torch.device] = None) -> 'TrackState':
        """A state for ``batch_size`` new sequences."""
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        return cls([None] * batch_size, [None] * batch_size, [None] * batch_size, [None] * batch_size,
                   [0] * batch_size, torch.device(device or 'cpu'))

    @property
    def batch_size(self) -> int:
        """Number of sample slots ``B``."""
        return len(self.tracks)

    def reset(self, index: int) -> None:
        """Forget sample ``index``'s tracks, pose, time and scene, and restart its id counter at 0 (call it when
        that slot starts a new scene)."""
        if not 0 <= index < self.batch_size:
            raise IndexError(f'sample index {index} out of range for a state of batch size {self.batch_size}')
        self.tracks[index] = None
        self.lidar2global[index] = None
        self.timestamp[index] = None
        self.scene_token[index] = None
        self.next_id[index] = 0

    def advance(self, index: int, tracks: TrackInstances, lidar2global: Union[np.ndarray, Tensor], timestamp: float,
                scene_token: Optional[str]) -> None:
        """Record sample ``index``'s carried tracks and the frame (float64 ``[4, 4]`` LiDAR -> global pose, time in
        seconds, scene) they belong to."""
        self.tracks[index] = tracks
        self.lidar2global[index] = torch.as_tensor(lidar2global, device=self.device)
        self.timestamp[index] = timestamp
        self.scene_token[index] = scene_token

    def prev2cur(self, index: int, lidar2global: Union[np.ndarray, Tensor]) -> Tensor:
        """``[4, 4]`` float64 transform of points from sample ``index``'s previous LiDAR frame into the frame whose
        LiDAR -> global pose is ``lidar2global`` (float64 ``[4, 4]``), on ``device``."""
        if self.lidar2global[index] is None:
            raise ValueError(f'sample {index} has no previous frame: advance() it before asking for its motion')
        return relative_pose(self.lidar2global[index], torch.as_tensor(lidar2global, device=self.device))
