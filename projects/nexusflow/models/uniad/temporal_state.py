"""The one object that holds every piece of cross-frame state of sequential inference."""
from dataclasses import dataclass, field
from typing import Any, List, Optional

import numpy as np
import torch

from ...core.frames import lidar2global_of, stack_relative_poses


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
        prev = [None if new or b >= len(self.lidar2global) else self.lidar2global[b]
                for b, new in enumerate(new_scene)]
        return stack_relative_poses(prev, [lidar2global_of(meta) for meta in metas])
