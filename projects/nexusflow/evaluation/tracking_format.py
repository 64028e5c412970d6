"""Tracking predictions in the LiDAR frame -> the nuScenes tracking result json.

This and the info converter are the only two places that translate between the mmdet3d 1.x box convention
(``[x, y, z_bottom, l, w, h, yaw, vx, vy]`` in the LiDAR frame, see the plugin README) and nuScenes (global frame,
gravity centre, size ``(w, l, h)``, rotation quaternion ``(w, x, y, z)``). It follows mmdet3d's
``output_to_nusc_box`` + ``lidar_nusc_box_to_global``, vectorised over the boxes and without the devkit ``Box``.
"""
from typing import Dict, List, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ['lidar_boxes_to_global', 'benchmark_boxes', 'sample_tracking_boxes', 'TRACKING_RESULT_META']

# camera-only submission, as the devkit's result format requires
TRACKING_RESULT_META = dict(use_camera=True, use_lidar=False, use_radar=False, use_map=False, use_external=False)


def lidar_boxes_to_global(boxes: np.ndarray, lidar2global: np.ndarray) -> Dict[str, np.ndarray]:
    """Convert LiDAR-frame boxes to nuScenes global-frame box parameters.

    Args:
        boxes: float ``[M, 9]`` ``[x, y, z, l, w, h, yaw, vx, vy]`` in the LiDAR frame: ``(x, y, z)`` the bottom
            centre in metres, ``l`` the extent along the heading, ``yaw`` in radians counter-clockwise from +x,
            ``(vx, vy)`` in m/s.
        lidar2global: float ``[4, 4]`` homogeneous LiDAR -> global transform (``ego2global @ lidar2ego``).

    Returns:
        dict of float64 arrays in the global frame: ``translation [M, 3]`` gravity centre in metres,
        ``size [M, 3]`` nuScenes ``(w, l, h)`` in metres, ``rotation [M, 4]`` unit quaternion ``(w, x, y, z)``,
        ``velocity [M, 2]`` ``(vx, vy)`` in m/s.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 9)
    lidar2global = np.asarray(lidar2global, dtype=np.float64)
    if lidar2global.shape != (4, 4):
        raise ValueError(f'lidar2global must be a 4x4 matrix, got shape {lidar2global.shape}')
    rot, trans = lidar2global[:3, :3], lidar2global[:3, 3]
    centre = boxes[:, :3].copy()
    centre[:, 2] += 0.5 * boxes[:, 5]
    velocity = np.concatenate([boxes[:, 7:9], np.zeros((len(boxes), 1))], axis=1)
    return dict(translation=centre @ rot.T + trans,
                size=boxes[:, [4, 3, 5]],
                rotation=_compose_with_yaw(rot, boxes[:, 6]),
                velocity=(velocity @ rot.T)[:, :2])


def _compose_with_yaw(rot: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Quaternions ``(w, x, y, z)`` ``[M, 4]`` of ``rot @ Rz(yaw)`` (Hamilton product ``q(rot) * q_z(yaw)``)."""
    x1, y1, z1, w1 = Rotation.from_matrix(rot).as_quat()
    w2, z2 = np.cos(0.5 * yaw), np.sin(0.5 * yaw)
    return np.stack([w1 * w2 - z1 * z2, x1 * w2 + y1 * z2, y1 * w2 - x1 * z2, w1 * z2 + z1 * w2], axis=1)


def benchmark_boxes(token: str, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, lidar2global: np.ndarray,
                    class_names: Sequence[str], benchmark_names: Sequence[str]):
    """Check one sample's predictions and convert the boxes of the benchmark's classes to the global frame.

    Shared by the tracking and the detection result formats.

    Returns:
        tuple: ``keep`` (indices of the kept boxes), ``names`` ``[M]`` (benchmark class name per input box, ``''``
        for classes the benchmark does not know), ``scores`` ``[M]`` float64 and ``lidar_boxes_to_global`` of the
        kept boxes.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 9)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(labels):
        raise ValueError(f'sample {token}: boxes, scores and labels differ in length: {len(boxes)}, '
                         f'{len(scores)}, {len(labels)}')
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f'sample {token}: labels must lie in [0, {len(class_names)}) (classes {list(class_names)}), '
                         f'got range [{labels.min()}, {labels.max()}]')
    if not np.all(np.isfinite(scores)):
        raise ValueError(f'sample {token}: scores_3d holds NaN/inf values; the devkit needs finite scores')
    names = np.array([name if name in benchmark_names else '' for name in class_names])[labels]
    keep = np.flatnonzero(names != '')
    return keep, names, scores, lidar_boxes_to_global(boxes[keep], lidar2global)


def sample_tracking_boxes(token: str, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                          track_ids: np.ndarray, lidar2global: np.ndarray, class_names: Sequence[str],
                          tracking_names: Sequence[str]) -> List[dict]:
    """The devkit ``TrackingBox`` dicts of one sample; boxes of non-tracking classes are dropped.

    Args:
        token: nuScenes sample token.
        boxes: float ``[M, 9]`` LiDAR-frame boxes (see ``lidar_boxes_to_global``).
        scores: float ``[M]`` in ``[0, 1]``; must be finite.
        labels: int ``[M]`` indices into ``class_names``.
        track_ids: int ``[M]`` track ids (unique within a scene).
        lidar2global: float ``[4, 4]``.
        class_names: the model's classes (nuScenes detection names, e.g. the 10 UniAD classes).
        tracking_names: the classes the tracking benchmark evaluates (``TrackingConfig.tracking_names``).

    Returns:
        list of dicts with ``sample_token, translation, size, rotation, velocity, tracking_id`` (str),
        ``tracking_name``, ``tracking_score`` (Python float), in the order of the input boxes.
    """
    keep, names, scores, glob = benchmark_boxes(token, boxes, scores, labels, lidar2global, class_names,
                                                tracking_names)
    track_ids = np.asarray(track_ids).reshape(-1)
    if len(track_ids) != len(scores):
        raise ValueError(f'sample {token}: boxes, scores, labels and instance_ids differ in length: '
                         f'{len(scores)}, {len(scores)}, {len(scores)}, {len(track_ids)}')
    return [dict(sample_token=token,
                 translation=glob['translation'][k].tolist(),
                 size=glob['size'][k].tolist(),
                 rotation=glob['rotation'][k].tolist(),
                 velocity=glob['velocity'][k].tolist(),
                 tracking_id=str(int(track_ids[i])),
                 tracking_name=str(names[i]),
                 tracking_score=float(scores[i])) for k, i in enumerate(keep)]
