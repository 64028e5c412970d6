"""Per-camera ray geometry and cuboid drawing for the synthetic renderer.

The ground is the plane z = 0 of the ego frame (the ego drives on flat ground with z = 0), so the ground point seen
by each pixel is fixed in the ego frame: it is computed once per camera and only moved by the ego pose per frame.
Pixel (column u, row v) looks along ``R_cam2ego @ K^-1 [u, v, 1]`` (pixel centres at integer coordinates, the
OpenCV convention that ``cv2`` drawing also uses). Boxes are drawn as shaded cuboids: faces turned towards the
camera, clipped against a near plane (Sutherland-Hodgman) so boxes that reach behind the camera are cut correctly.
"""
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from .rig import Sensor

NEAR_PLANE = 0.1          # metres in front of the camera
MAX_GROUND_RANGE = 100.0  # metres; farther ground is drawn as haze
FOG_START = 35.0          # metres where haze starts to blend in
GROUND_ROW = 1024         # ground points are processed as rows of this many points
EDGE_SHADE = 0.75         # cuboid outlines are the face colour times this
_SHIFT = 4                # cv2 fractional bits for sub-pixel vertices

# Box corners in the box frame (x forward along the length, y left, z up), as sign triples; z = 0 bottom, 1 top.
BOX_CORNERS = np.array([[1, 1, 0], [1, -1, 0], [-1, -1, 0], [-1, 1, 0],
                        [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1]], dtype=np.float64)
# Faces as corner indices; the bottom face is never seen from above the ground and is not drawn.
BOX_FACES = {'front': [0, 1, 5, 4], 'rear': [2, 3, 7, 6], 'left': [3, 0, 4, 7], 'right': [1, 2, 6, 5],
             'top': [4, 5, 6, 7]}
_FACE_NAMES = tuple(BOX_FACES)
_FACE_INDEX = np.array(list(BOX_FACES.values()))


def fog_weight(distance: np.ndarray) -> np.ndarray:
    """Haze weight in [0, 1] for ``distance`` metres: 0 before FOG_START, 1 at MAX_GROUND_RANGE, smooth between."""
    x = np.clip((np.asarray(distance, dtype=np.float64) - FOG_START) / (MAX_GROUND_RANGE - FOG_START), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class CameraModel:
    """Fixed ray geometry of one camera of the rig for images of ``img_size`` = (W, H) pixels.

    Attributes:
        ground_index (np.ndarray): int64 ``[G]`` flat pixel indices (row-major) that see ground within range.
        ground_ego (np.ndarray): float32 ``[2, R, GROUND_ROW]`` ego-frame x and y (m) of those ground points,
            row-major and zero-padded to ``R * GROUND_ROW >= G`` (cv2.remap takes at most 32767 columns).
        ground_fog (np.ndarray): uint16 ``[G, 1]`` haze weight in 1/256 units.
        elevation (np.ndarray): float32 ``[H, W]`` ray elevation above the horizon, radians.
        cam2ego (np.ndarray): float64 ``[4, 4]``; ``intrinsic`` float64 ``[3, 3]``.
    """

    def __init__(self, sensor: Sensor, img_size: Tuple[int, int]):
        width, height = img_size
        self.channel = sensor.channel
        self.size = (width, height)
        self.intrinsic = np.array(sensor.intrinsic, dtype=np.float64)
        self.cam2ego = sensor.sensor2ego
        u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        pix = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3)
        rays = pix @ np.linalg.inv(self.intrinsic).T @ self.cam2ego[:3, :3].T       # [HW, 3] ego frame
        self.elevation = np.arctan2(rays[:, 2], np.linalg.norm(rays[:, :2], axis=1)).reshape(height, width)
        self.elevation = self.elevation.astype(np.float32)
        origin = self.cam2ego[:3, 3]
        down = np.nonzero(rays[:, 2] < -1e-6)[0]
        hit = origin[None, :2] + (-origin[2] / rays[down, 2])[:, None] * rays[down, :2]   # ray meets z = 0
        dist = np.linalg.norm(hit - origin[None, :2], axis=1)
        ground = dist < MAX_GROUND_RANGE
        self.ground_index = down[ground]
        rows = -(-len(self.ground_index) // GROUND_ROW)
        padded = np.zeros((rows * GROUND_ROW, 2), dtype=np.float32)
        padded[:len(self.ground_index)] = hit[ground]
        self.ground_ego = np.ascontiguousarray(padded.T.reshape(2, rows, GROUND_ROW))
        self.ground_fog = np.round(fog_weight(dist[ground]) * 256).astype(np.uint16)[:, None]

    def ego2cam(self, points: np.ndarray) -> np.ndarray:
        """Ego-frame points ``[..., 3]`` -> camera-frame points ``[..., 3]`` (metres; z = depth)."""
        return (points - self.cam2ego[:3, 3]) @ self.cam2ego[:3, :3]

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points ``[N, 3]`` with z > 0 -> pixel coordinates ``[N, 2]`` (u column, v row)."""
        uvw = points_cam @ self.intrinsic.T
        return uvw[:, :2] / uvw[:, 2:3]


def box_corners(centre: np.ndarray, yaw: float, size_wlh: Sequence[float]) -> np.ndarray:
    """Corners ``[8, 3]`` of a box standing on the ground; ``centre`` is its bottom centre (x, y[, z]) in any frame
    whose z is up; ``yaw`` is its heading in that frame; ``size_wlh`` = (width, length, height) in metres."""
    w, l, h = size_wlh
    local = BOX_CORNERS * np.array([l / 2.0, w / 2.0, h])
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    base = np.array([centre[0], centre[1], centre[2] if len(centre) > 2 else 0.0])
    return local @ rot.T + base


def clip_near(poly: np.ndarray) -> np.ndarray:
    """Part of a convex camera-frame polygon ``[K, 3]`` with z >= NEAR_PLANE (may be empty ``[0, 3]``)."""
    inside = poly[:, 2] >= NEAR_PLANE
    if inside.all():
        return poly
    out = []
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        if inside[i]:
            out.append(a)
        if inside[i] != inside[(i + 1) % len(poly)]:
            t = (NEAR_PLANE - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out).reshape(-1, 3)


def draw_cuboid(image: np.ndarray, camera: CameraModel, corners_cam: np.ndarray,
                face_colours: Dict[str, Tuple[int, int, int]]) -> bool:
    """Fill the camera-facing faces of one box.

    Args:
        image: uint8 ``[H, W, 3]`` RGB, drawn in place.
        camera: the camera the corners are expressed in.
        corners_cam: float ``[8, 3]`` corners in the camera frame (``BOX_CORNERS`` order).
        face_colours: face name -> RGB tuple (faces of ``BOX_FACES``).

    Returns:
        bool: True if any face was drawn.
    """
    faces = corners_cam[_FACE_INDEX]                       # [5, 4, 3]
    centres = faces.mean(axis=1)                           # [5, 3]
    normals = centres - corners_cam.mean(axis=0)           # outward (the box is convex)
    facing = (normals * centres).sum(axis=1) < 0.0         # the camera (origin) is in front of the face
    drawn = False
    for k in np.nonzero(facing)[0]:
        face = clip_near(faces[k])
        if len(face) < 3:
            continue
        pix = np.round(camera.project(face) * (1 << _SHIFT)).astype(np.int32)
        colour = face_colours[_FACE_NAMES[k]]
        cv2.fillConvexPoly(image, pix, colour, lineType=cv2.LINE_8, shift=_SHIFT)
        cv2.polylines(image, [pix], True, tuple(int(c * EDGE_SHADE) for c in colour), 1, lineType=cv2.LINE_8,
                      shift=_SHIFT)
        drawn = True
    return drawn
