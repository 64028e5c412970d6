"""Pinhole camera and ray casting of a :class:`Room` (slab tests against the room and its oriented boxes).

Camera frame (OpenCV): ``x`` right, ``y`` down, ``z`` forward. Pixel ``(u, v)`` (column, row) has its centre at
``(u + 0.5, v + 0.5)``; its ray is ``K^-1 [u + 0.5, v + 0.5, 1]``, scaled so that its camera ``z`` is 1, hence the
ray parameter of a hit *is* its depth along the optical axis (NYUv2 depth maps hold that depth, not the range).
"""
from dataclasses import dataclass

import numpy as np

from .furniture import LABEL, TEXTURES, Box
from .scene import Room

# NYUv2's Kinect: fx = 518.86 px at 640 px width
FOCAL_PER_WIDTH = 518.8579 / 640.0
SURFACES = ('wall', 'floor', 'ceiling', 'box')
MIN_DISTANCE = 1e-6


def camera_matrix(height: int, width: int) -> np.ndarray:
    """Intrinsics ``[3, 3]`` of an ``H x W`` image: ``fx = fy = 0.8107 W`` (NYUv2's Kinect), principal point at the
    image centre ``(W / 2, H / 2)``."""
    focal = FOCAL_PER_WIDTH * width
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def pixel_rays(intrinsics: np.ndarray, height: int, width: int) -> np.ndarray:
    """Camera-frame ray of every pixel centre, row-major: ``[H * W, 3]`` with ``z = 1``."""
    rows, cols = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing='ij')
    pixels = np.stack([cols.ravel(), rows.ravel(), np.ones(height * width)], axis=1)
    return pixels @ np.linalg.inv(intrinsics).T


def rotation_y(yaw: float) -> np.ndarray:
    """``[3, 3]`` rotation by ``yaw`` about ``+y``: local -> world of a :class:`Box`."""
    cos, sin = np.cos(yaw), np.sin(yaw)
    return np.array([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])


@dataclass
class GBuffer:
    """Per-ray hit of the nearest surface (``N`` rays).

    Attributes:
        depth (np.ndarray): ``[N]`` ray parameter of the hit (= camera ``z`` for :func:`pixel_rays`), metres.
        normal (np.ndarray): ``[N, 3]`` world unit normal facing the camera.
        label (np.ndarray): ``[N]`` int NYUv2-13 label, ``-1`` for clutter.
        albedo (np.ndarray): ``[N, 3]`` RGB albedo in ``[0, 1]``.
        texture (np.ndarray): ``[N]`` int index into :data:`TEXTURES`.
        surface (np.ndarray): ``[N]`` int index into :data:`SURFACES`.
    """
    depth: np.ndarray
    normal: np.ndarray
    label: np.ndarray
    albedo: np.ndarray
    texture: np.ndarray
    surface: np.ndarray


def _slabs(origin: np.ndarray, dirs: np.ndarray, low: np.ndarray, high: np.ndarray):
    """Entry and exit parameters ``[N, 3]`` of each ray through the three slabs ``low <= p <= high``."""
    safe = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    t_low, t_high = (low - origin) / safe, (high - origin) / safe
    return np.minimum(t_low, t_high), np.maximum(t_low, t_high)


def _axis_normals(dirs: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Unit normals ``[N, 3]`` along ``axis`` ``[N]`` pointing against the rays."""
    rows = np.arange(len(dirs))
    normals = np.zeros_like(dirs)
    normals[rows, axis] = -np.sign(dirs[rows, axis])
    return normals


def cast_room(room: Room, origin: np.ndarray, dirs: np.ndarray) -> GBuffer:
    """Hits of rays from ``origin`` inside the room on its walls, floor and ceiling (world ``dirs`` ``[N, 3]``)."""
    _, t_exit = _slabs(origin, dirs, np.zeros(3), np.asarray(room.size))
    axis = t_exit.argmin(axis=1)
    rows = np.arange(len(dirs))
    floor, ceiling = (axis == 1) & (dirs[:, 1] < 0), (axis == 1) & (dirs[:, 1] >= 0)
    surface = np.where(floor, SURFACES.index('floor'),
                       np.where(ceiling, SURFACES.index('ceiling'), SURFACES.index('wall')))
    # per surface index (wall, floor, ceiling): label, albedo, texture
    label = np.array([LABEL['wall'], LABEL['floor'], LABEL['ceiling']])[surface]
    albedo = np.array([room.wall_color, room.floor_color, room.ceiling_color], dtype=np.float64)[surface]
    texture = np.array([TEXTURES.index(t) for t in ('noise', 'wood', 'plain')])[surface]
    return GBuffer(t_exit[rows, axis], _axis_normals(dirs, axis), label, albedo, texture, surface)


def cast_box(box: Box, origin: np.ndarray, dirs: np.ndarray):
    """Hit parameter ``[N]`` (``inf`` on a miss) and world normals ``[N, 3]`` of rays against one box."""
    rotation = rotation_y(box.yaw)
    local_origin = rotation.T @ (origin - np.asarray(box.center))
    local_dirs = dirs @ rotation
    half = np.asarray(box.half)
    t_enter, t_exit = _slabs(local_origin, local_dirs, -half, half)
    near, far = t_enter.max(axis=1), t_exit.min(axis=1)
    hit = (near <= far) & (near > MIN_DISTANCE)
    return np.where(hit, near, np.inf), _axis_normals(local_dirs, t_enter.argmax(axis=1)) @ rotation.T


def cast(room: Room, origin: np.ndarray, dirs: np.ndarray) -> GBuffer:
    """Nearest hit of every ray on the room and its boxes (a z-buffer over the primitives)."""
    gbuf = cast_room(room, origin, dirs)
    for box in room.boxes:
        depth, normal = cast_box(box, origin, dirs)
        closer = depth < gbuf.depth
        if not closer.any():
            continue
        gbuf.depth[closer] = depth[closer]
        gbuf.normal[closer] = normal[closer]
        gbuf.label[closer] = box.label
        gbuf.albedo[closer] = box.color
        gbuf.texture[closer] = TEXTURES.index(box.texture)
        gbuf.surface[closer] = SURFACES.index('box')
    return gbuf
