"""Keyframe annotations of a planned scene, as the nuScenes ``sample_annotation`` table stores them.

A mover is annotated on one contiguous run of keyframes: from the first to the last keyframe at which it is within
``ANNOTATION_RANGE`` of the ego (so its prev/next chain never has holes). Values: global bottom-centre position
raised to the box centre (z = h / 2, the ground is z = 0), size ``(w, l, h)``, yaw quaternion ``[w, x, y, z]``;
``num_lidar_pts`` is a proxy proportional to the box's side area over squared distance (at least 1, so the devkit's
evaluation and mmdet3d's loaders keep every box); visibility comes from distance bands; the attribute (exactly
one) says whether the mover is moving (speed > 0.3 m/s over +-0.25 s) or still.
"""
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from .geometry import yaw_to_quaternion
from .traffic import ScenePlan

ANNOTATION_RANGE = 60.0          # metres from the ego
LIDAR_DENSITY = 9000.0           # proxy points per m^2 of box side at 1 m (about 900 points on a car at 10 m)
VISIBILITY_BANDS = ((25.0, '4'), (40.0, '3'), (55.0, '2'))   # (max distance, visibility token); farther -> '1'
MOVING_SPEED = 0.3               # m/s


@dataclass(frozen=True)
class Annotation:
    """One box of one mover at one keyframe (global frame, metres)."""
    mover: int                   # index into ``plan.movers``
    sample: int                  # keyframe index
    translation: Tuple[float, float, float]
    size: Tuple[float, float, float]
    rotation: Tuple[float, float, float, float]
    num_lidar_pts: int
    visibility: str
    attribute: str


def _visibility(distance: float) -> str:
    """nuScenes visibility token of a box ``distance`` metres from the ego."""
    for limit, token in VISIBILITY_BANDS:
        if distance < limit:
            return token
    return '1'


def mover_annotations(plan: ScenePlan, index: int) -> List[Annotation]:
    """The contiguous annotation run of ``plan.movers[index]`` (empty if it never comes within range)."""
    mover = plan.movers[index]
    ego_xy, _ = plan.ego.poses(plan.times)
    xy, yaw = mover.poses(plan.times)
    dist = np.linalg.norm(xy - ego_xy, axis=1)
    inside = np.nonzero(dist < ANNOTATION_RANGE)[0]
    if not len(inside):
        return []
    before, _ = mover.poses(plan.times - 0.25)
    after, _ = mover.poses(plan.times + 0.25)
    speed = np.linalg.norm(after - before, axis=1) / 0.5
    w, l, h = mover.size_wlh
    out = []
    for k in range(int(inside[0]), int(inside[-1]) + 1):
        pts = int(LIDAR_DENSITY * (w * h + l * h) / max(float(dist[k]), 2.0) ** 2)
        attribute = mover.category.moving_attribute if speed[k] > MOVING_SPEED else mover.category.still_attribute
        out.append(Annotation(mover=index, sample=k, translation=(float(xy[k, 0]), float(xy[k, 1]), h / 2.0),
                              size=(w, l, h), rotation=tuple(yaw_to_quaternion(float(yaw[k]))),
                              num_lidar_pts=max(1, pts), visibility=_visibility(float(dist[k])),
                              attribute=attribute))
    return out


def scene_annotations(plan: ScenePlan) -> List[List[Annotation]]:
    """Annotation runs of all movers of the plan, in mover order (some may be empty)."""
    return [mover_annotations(plan, i) for i in range(len(plan.movers))]
