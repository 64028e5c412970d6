"""Procedural indoor rooms and camera poses for the synthetic NYUv2.

World frame: ``x`` and ``z`` span the floor, ``y`` up, metres; the room is the box ``[0, X] x [0, Y] x [0, Z]``
(floor at ``y = 0``). A room has a type (bedroom, living room, dining room, office) that decides its furniture and
palette, so that the image statistics form natural clusters. Wall furniture stands with its back against a wall;
the table stands free; pictures and windows hang on walls; small objects lie on the floor. Footprints (axis-aligned
bounds of the rotated rectangles) never overlap.
"""
from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np

from ..meta import IGNORE_INDEX
from .furniture import LABEL, WALL_FURNITURE, Box, Color, place, random_color, table_with_chairs

# room type -> (wall furniture, probability of a table with chairs)
ROOM_TYPES = {
    'bedroom': (('bed', 'cabinet', 'cabinet', 'cabinet'), 0.3),
    'living': (('sofa', 'tv_stand', 'cabinet', 'sofa'), 0.6),
    'dining': (('cabinet', 'cabinet', 'tv_stand'), 1.0),
    'office': (('cabinet', 'cabinet', 'cabinet', 'cabinet'), 0.9),
}
# wall index -> yaw whose front (sin a, cos a) points into the room: z = 0, z = Z, x = 0, x = X
WALL_YAWS = (0.0, np.pi, np.pi / 2, -np.pi / 2)
WALL_MARGIN = 0.05


@dataclass
class Room:
    """A room: ``size`` ``(X, Y, Z)`` metres, surface albedos, ceiling lamp position, boxes and footprints.

    ``footprints`` are ``(x_min, z_min, x_max, z_max)`` world rectangles of the floor-standing furniture.
    """
    size: Tuple[float, float, float]
    wall_color: Color
    floor_color: Color
    ceiling_color: Color
    lamp: Tuple[float, float, float]
    boxes: List[Box] = field(default_factory=list)
    footprints: List[Tuple[float, float, float, float]] = field(default_factory=list)


def footprint(origin, yaw: float, size: Tuple[float, float]) -> Tuple[float, float, float, float]:
    """World axis-aligned bounds of a ``size = (size_x, size_z)`` rectangle centred at ``origin``, rotated."""
    cos, sin = abs(np.cos(yaw)), abs(np.sin(yaw))
    half_x = 0.5 * (cos * size[0] + sin * size[1])
    half_z = 0.5 * (sin * size[0] + cos * size[1])
    return origin[0] - half_x, origin[1] - half_z, origin[0] + half_x, origin[1] + half_z


def _fits(room: Room, rect) -> bool:
    """Inside the room (with a margin) and disjoint from every placed footprint."""
    size_x, _, size_z = room.size
    low, high_x, high_z = WALL_MARGIN / 2, size_x - WALL_MARGIN / 2, size_z - WALL_MARGIN / 2
    if rect[0] < low or rect[1] < low or rect[2] > high_x or rect[3] > high_z:
        return False
    return all(rect[2] <= o[0] or o[2] <= rect[0] or rect[3] <= o[1] or o[3] <= rect[1] for o in room.footprints)


def _place(rng, room: Room, builder, against_wall: bool, attempts: int = 20) -> None:
    """Build one piece with ``builder`` and try ``attempts`` random poses; keep the first whose footprint fits."""
    parts, size = builder(rng)
    size_x, _, size_z = room.size
    for _ in range(attempts):
        if against_wall:
            wall = int(rng.integers(4))
            yaw = WALL_YAWS[wall]
            along = rng.uniform(0.0, size_x if wall < 2 else size_z)
            depth = WALL_MARGIN + size[1] / 2
            origin = [(along, depth), (along, size_z - depth), (depth, along), (size_x - depth, along)][wall]
        else:
            yaw = float(rng.uniform(-0.4, 0.4))
            origin = (rng.uniform(0.3, size_x - 0.3), rng.uniform(0.3, size_z - 0.3))
        rect = footprint(origin, yaw, size)
        if _fits(room, rect):
            room.boxes.extend(place(parts, origin, yaw))
            room.footprints.append(rect)
            return


def _wall_panel(rng, room: Room, label: int, width: float, height: float, center_y: float, color: Color) -> None:
    """A thin box (picture, window) on a random wall, 1-3 cm in front of it."""
    size_x, _, size_z = room.size
    wall = int(rng.integers(4))
    length = size_x if wall < 2 else size_z
    if width + 0.2 > length:
        return
    along = rng.uniform(width / 2 + 0.1, length - width / 2 - 0.1)
    thick = rng.uniform(0.01, 0.03)
    center = [(along, center_y, thick / 2), (along, center_y, size_z - thick / 2), (thick / 2, center_y, along),
              (size_x - thick / 2, center_y, along)][wall]
    room.boxes.append(Box(tuple(float(c) for c in center), (width / 2, height / 2, thick / 2), WALL_YAWS[wall], label,
                          color, 'plain'))


def _floor_items(rng, room: Room) -> None:
    """0-4 small boxes on the free floor: objects ('objects') or unlabelled clutter (-1)."""
    for _ in range(int(rng.integers(0, 5))):
        half = (rng.uniform(0.08, 0.25), rng.uniform(0.05, 0.3), rng.uniform(0.08, 0.25))
        origin = (rng.uniform(0.3, room.size[0] - 0.3), rng.uniform(0.3, room.size[2] - 0.3))
        yaw = float(rng.uniform(-np.pi, np.pi))
        rect = footprint(origin, yaw, (2 * half[0], 2 * half[2]))
        if _fits(room, rect):
            label = LABEL['objects'] if rng.random() < 0.7 else IGNORE_INDEX
            room.boxes.append(Box((origin[0], half[1], origin[1]), half, yaw, label, random_color(rng, 0.05, 0.95)))
            room.footprints.append(rect)


def sample_room(rng: np.random.Generator) -> Room:
    """A random furnished room of a random type (see :data:`ROOM_TYPES`)."""
    kind = list(ROOM_TYPES)[int(rng.integers(len(ROOM_TYPES)))]
    size = (float(rng.uniform(3.0, 6.0)), float(rng.uniform(2.4, 3.0)), float(rng.uniform(3.0, 7.0)))
    warm = {'bedroom': 0.9, 'living': 0.8, 'dining': 0.7, 'office': 0.55}[kind]
    room = Room(size=size, wall_color=tuple(float(c) for c in rng.uniform(0.55, 0.95, 3) * (warm, 0.85 * warm + 0.1,
                                                                                            1.0 - 0.4 * warm)),
                floor_color=random_color(rng, 0.2, 0.7), ceiling_color=random_color(rng, 0.85, 0.98),
                lamp=(size[0] * float(rng.uniform(0.3, 0.7)), size[1] - 0.1, size[2] * float(rng.uniform(0.3, 0.7))))
    wall_items, table_prob = ROOM_TYPES[kind]
    for name in wall_items:
        _place(rng, room, WALL_FURNITURE[name], against_wall=True)
    if rng.random() < table_prob:
        _place(rng, room, table_with_chairs, against_wall=False)
    for _ in range(int(rng.integers(0, 3))):
        _wall_panel(rng, room, LABEL['window'], rng.uniform(0.6, 1.4), rng.uniform(0.7, 1.2),
                    rng.uniform(1.2, 1.6), tuple(float(c) for c in rng.uniform(0.75, 1.0, 3)))
    for _ in range(int(rng.integers(0, 4))):
        _wall_panel(rng, room, LABEL['picture'], rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8),
                    rng.uniform(1.3, 1.8), random_color(rng, 0.05, 0.95))
    _floor_items(rng, room)
    return room


def sample_camera(rng: np.random.Generator, room: Room) -> Tuple[np.ndarray, np.ndarray]:
    """A camera pose in the free space of ``room``, looking across it and slightly down.

    Returns:
        tuple: position ``[3]`` (world, metres) and rotation ``[3, 3]`` camera -> world whose columns are the camera
        axes (OpenCV: ``x`` right, ``y`` down, ``z`` forward) in world coordinates.
    """
    size_x, _, size_z = room.size
    for _ in range(100):
        x, z = rng.uniform(0.4, size_x - 0.4), rng.uniform(0.4, size_z - 0.4)
        if all(not (o[0] - 0.3 < x < o[2] + 0.3 and o[1] - 0.3 < z < o[3] + 0.3) for o in room.footprints):
            break
    position = np.array([x, rng.uniform(1.0, 1.7), z])
    if room.footprints and rng.random() < 0.75:
        rect = room.footprints[int(rng.integers(len(room.footprints)))]
        target = np.array([(rect[0] + rect[2]) / 2, 0.5, (rect[1] + rect[3]) / 2])
    else:
        target = np.array([size_x * rng.uniform(0.25, 0.75), 0.5, size_z * rng.uniform(0.25, 0.75)])
    offset = target - position
    distance = np.hypot(offset[0], offset[2])
    yaw = np.arctan2(offset[0], offset[2]) if distance > 0.5 else rng.uniform(-np.pi, np.pi)
    pitch = np.clip(np.arctan2(-offset[1], max(distance, 0.5)) + np.deg2rad(rng.uniform(-5.0, 5.0)),
                    np.deg2rad(3.0), np.deg2rad(35.0))
    roll = np.deg2rad(rng.uniform(-3.0, 3.0))
    forward = np.array([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    right, down = (np.cos(roll) * right + np.sin(roll) * down, -np.sin(roll) * right + np.cos(roll) * down)
    return position, np.stack([right, down, forward], axis=1)
