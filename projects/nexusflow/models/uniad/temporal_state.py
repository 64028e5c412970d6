"""The one object that holds every piece of cross-frame state of sequential inference."""
from dataclasses import dataclass, field
from typing import Any, List, Optional

import numpy as np
import torch


def lidar2global_of(meta: dict) -> np.ndarray:
    """``[4, 4]`` float64 LiDAR -> global transform of a frame: ``ego2global @ lidar2ego``."""
    return np.asarray(meta['ego2global'], dtype=np.float64) @ np.asarray(meta['lidar2ego'], dtype=np.float64)


def relative_pose(prev_lidar2global: Optional[np.ndarray], cur_lidar2global: np.ndarray) -> np.ndarray:
    """``[4, 4]`` transform of points from the previous LiDAR frame into the current one (zeros if no previous)."""
    if prev_lidar2global is None:
        return np.zeros((4, 4))
    return np.linalg.inv(cur_lidar2global) @ prev_lidar2global


@dataclass
class TemporalState:
    """Cross-frame state of the B sample streams of a sequential test.

    Attributes:
        scene_tokens: scene of each stream's last frame (``None`` before the first frame).
        lidar2global: ``[4, 4]`` LiDAR -> global pose of each stream's last frame.
        prev_bev: ``[B, H*W, C]`` BEV of the last frame (``None`` before the first frame).
        track_state: the track head's own state object (opaque here), or ``None``.
    """

    scene_tokens: List[Optional[str]] = field(default_factory=list)
    lidar2global: List[Optional[np.ndarray]] = field(default_factory=list)
    prev_bev: Optional[torch.Tensor] = None
    track_state: Any = None

    @property
    def batch_size(self) -> int:
        return len(self.scene_tokens)

    def new_scene_mask(self, scene_tokens: List[str]) -> List[bool]:
        """Which streams start a new scene with the incoming frames (all of them for a fresh state)."""
        if len(scene_tokens) != self.batch_size:
            return [True] * len(scene_tokens)
        return [old != new for old, new in zip(self.scene_tokens, scene_tokens)]

    def prev2cur(self, metas: List[dict], new_scene: List[bool]) -> torch.Tensor:
        """``[B, 4, 4]`` float32 previous -> current LiDAR transforms; all zeros for streams without history."""
        mats = [relative_pose(None if new or b >= len(self.lidar2global) else self.lidar2global[b],
                              lidar2global_of(meta)) for b, (meta, new) in enumerate(zip(metas, new_scene))]
        return torch.from_numpy(np.stack(mats)).float()
