"""Small geometry helpers of the synthetic world: rotations, arcline paths, polylines, box overlap.

Frames: the global (map) frame of nuScenes, x east, y north, z up, metres; yaw in radians counter-clockwise from
+x. Quaternions are nuScenes' ``[w, x, y, z]``.

The arcline evaluation follows ``nuscenes.map_expansion.arcline_path_utils`` (three segments of signed curvature
``sign / radius`` laid end to end from ``start_pose``), written vectorised so that a lane is sampled in one call.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

# Curvature sign of the three segments of each arcline shape (devkit ``compute_segment_sign``).
_SHAPE_SIGNS = {'LSL': (1, 0, 1), 'LSR': (1, 0, -1), 'RSL': (-1, 0, 1), 'RSR': (-1, 0, -1),
                'LRL': (1, -1, 1), 'RLR': (-1, 1, -1)}


def yaw_to_quaternion(yaw: float) -> list:
    """Rotation about +z by ``yaw`` radians as a nuScenes quaternion ``[w, x, y, z]`` (list of 4 floats)."""
    return [math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0)]


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angles in radians wrapped to ``[-pi, pi)``."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


class PlanarFrame:
    """Rigid 2-D transform from a local (grid) frame into the global frame: ``p_g = R(angle) p_l + origin``.

    Args:
        angle (float): rotation of the local axes in the global frame, radians, counter-clockwise.
        origin (tuple[float, float]): global position of the local origin, metres.
    """

    def __init__(self, angle: float = 0.0, origin: Tuple[float, float] = (0.0, 0.0)):
        self.angle = float(angle)
        self.origin = np.asarray(origin, dtype=np.float64)
        c, s = math.cos(self.angle), math.sin(self.angle)
        self.rotation = np.array([[c, -s], [s, c]])

    def points(self, pts: np.ndarray) -> np.ndarray:
        """Local points ``[..., 2]`` -> global points ``[..., 2]`` (float64, metres)."""
        return np.asarray(pts, dtype=np.float64) @ self.rotation.T + self.origin

    def vectors(self, vecs: np.ndarray) -> np.ndarray:
        """Local direction vectors ``[..., 2]`` -> global direction vectors (rotation only)."""
        return np.asarray(vecs, dtype=np.float64) @ self.rotation.T


def make_arcline(start_pose: Tuple[float, float, float], shape: str, radius: float,
                 segment_length: Sequence[float]) -> Dict:
    """An ``arcline_path_3`` record: start/end pose ``[x, y, yaw]`` (global, m / rad), shape, radius (m), 3 lengths."""
    if shape not in _SHAPE_SIGNS:
        raise ValueError(f'arcline shape must be one of {sorted(_SHAPE_SIGNS)}, got {shape!r}')
    record = {'start_pose': [float(v) for v in start_pose], 'end_pose': [], 'shape': shape,
              'radius': float(radius), 'segment_length': [float(v) for v in segment_length]}
    record['end_pose'] = arcline_end_pose(record)
    return record


def _advance(pose: Tuple[float, float, float], curvature: float, dist: float) -> Tuple[float, float, float]:
    """Scalar pose ``(x, y, yaw)`` advanced ``dist`` metres along a circle of signed ``curvature`` (1/m)."""
    theta = curvature * dist
    if abs(curvature) < 1e-9:
        fwd, lat = dist, 0.0
    else:
        fwd, lat = math.sin(theta) / curvature, (1.0 - math.cos(theta)) / curvature
    c, s = math.cos(pose[2]), math.sin(pose[2])
    yaw = (pose[2] + theta + math.pi) % (2.0 * math.pi) - math.pi
    return pose[0] + c * fwd - s * lat, pose[1] + s * fwd + c * lat, yaw


def _segment_starts(arcline: Dict):
    """(start pose, curvature, start arc length, length) of each of the three arcline segments."""
    pose = tuple(float(v) for v in arcline['start_pose'])
    start, out = 0.0, []
    for sign, length in zip(_SHAPE_SIGNS[arcline['shape']], arcline['segment_length']):
        curvature = sign / arcline['radius']
        out.append((pose, curvature, start, length))
        pose = _advance(pose, curvature, length)
        start += length
    return out, pose


def arcline_poses(arcline: Dict, dist: np.ndarray) -> np.ndarray:
    """Poses at arc lengths ``dist`` (m, clipped to ``[0, length]``) along an arcline: float64 ``[N, 3]`` x, y, yaw."""
    segments, _ = _segment_starts(arcline)
    dist = np.clip(np.asarray(dist, dtype=np.float64), 0.0, sum(arcline['segment_length']))
    out = np.zeros((dist.shape[0], 3))
    for i, (pose, curvature, start, length) in enumerate(segments):
        mask = (dist >= start) & ((dist < start + length) | (i == len(segments) - 1))
        if not mask.any():
            continue
        step = dist[mask] - start
        theta = curvature * step
        if abs(curvature) < 1e-9:
            fwd, lat = step, np.zeros_like(step)
        else:
            fwd, lat = np.sin(theta) / curvature, (1.0 - np.cos(theta)) / curvature
        c, s = math.cos(pose[2]), math.sin(pose[2])
        out[mask, 0] = pose[0] + c * fwd - s * lat
        out[mask, 1] = pose[1] + s * fwd + c * lat
        out[mask, 2] = wrap_angle(pose[2] + theta)
    return out


def arcline_end_pose(arcline: Dict) -> list:
    """End pose ``[x, y, yaw]`` of an arcline (global, m / rad)."""
    return list(_segment_starts(arcline)[1])


def sample_arcline(arcline: Dict, resolution: float) -> np.ndarray:
    """Poses every ~``resolution`` metres along an arcline, both ends included: float64 ``[N >= 2, 3]``."""
    length = sum(arcline['segment_length'])
    num = max(2, int(math.ceil(length / resolution)) + 1)
    return arcline_poses(arcline, np.linspace(0.0, length, num))


class Polyline:
    """A path through 2-D points with arc-length interpolation of position and heading.

    Args:
        points (np.ndarray): float ``[N >= 2, 2]`` global x, y in metres; consecutive duplicates are dropped.
        yaws (np.ndarray, optional): heading at each point (rad), interpolated along the path (e.g. the exact
            tangent of a sampled arcline); without it each segment's direction is used.
    """

    def __init__(self, points: np.ndarray, yaws: Optional[np.ndarray] = None):
        pts = np.asarray(points, dtype=np.float64)
        keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-6])
        pts = pts[keep]
        if pts.shape[0] < 2:
            raise ValueError(f'a polyline needs at least 2 distinct points, got {pts.shape[0]}')
        self.points = pts
        seg = np.diff(pts, axis=0)
        self.seg_yaw = np.arctan2(seg[:, 1], seg[:, 0])
        self.yaws = None if yaws is None else np.unwrap(np.asarray(yaws, dtype=np.float64)[keep])
        self.cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(seg, axis=1))])
        self.length = float(self.cum[-1])

    def pose_at(self, dist: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Position ``[N, 2]`` (m) and heading ``[N]`` (rad in [-pi, pi)) at arc lengths ``dist`` (m, clipped)."""
        dist = np.clip(np.asarray(dist, dtype=np.float64), 0.0, self.length)
        idx = np.clip(np.searchsorted(self.cum, dist, side='right') - 1, 0, len(self.seg_yaw) - 1)
        frac = (dist - self.cum[idx]) / (self.cum[idx + 1] - self.cum[idx])
        xy = self.points[idx] + frac[:, None] * (self.points[idx + 1] - self.points[idx])
        if self.yaws is None:
            return xy, self.seg_yaw[idx]
        return xy, wrap_angle(self.yaws[idx] + frac * (self.yaws[idx + 1] - self.yaws[idx]))


def rectangles_overlap(a: np.ndarray, b: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Separating-axis test of oriented rectangles, broadcast over leading dims.

    Args:
        a, b (np.ndarray): ``[..., 5]`` rows ``(x, y, length, width, yaw)`` in metres / radians, same frame.
        margin (float): each rectangle is grown by this many metres on every side before the test.

    Returns:
        np.ndarray: bool ``[...]``, True where the (grown) rectangles intersect.
    """
    half = [np.stack([r[..., 2] / 2 + margin, r[..., 3] / 2 + margin], -1) for r in (a, b)]
    # axes[i][..., k, :] is the unit vector of rectangle i's k-th side (k=0 along length, k=1 along width)
    axes = [np.stack([np.stack([np.cos(r[..., 4]), np.sin(r[..., 4])], -1),
                      np.stack([-np.sin(r[..., 4]), np.cos(r[..., 4])], -1)], -2) for r in (a, b)]
    delta = b[..., :2] - a[..., :2]
    overlap = np.ones(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]), dtype=bool)
    for axis_set in axes:
        for k in range(2):
            axis = axis_set[..., k, :]
            reach = sum((np.abs((ax * axis[..., None, :]).sum(-1)) * h).sum(-1) for ax, h in zip(axes, half))
            overlap &= np.abs((delta * axis).sum(-1)) <= reach
    return overlap
