"""Furniture of the synthetic NYUv2 rooms, each a list of oriented boxes with NYUv2-13 labels.

Every builder takes ``rng`` and returns ``(parts, (size_x, size_z))``: the parts in furniture coordinates (origin
at the centre of the footprint on the floor, ``x`` along the furniture, ``y`` up, ``z`` towards its front) and the
footprint. :func:`place` moves them into the world: a yaw of ``a`` radians about ``+y`` maps local ``(x, z)`` to
``(cos a * x + sin a * z, -sin a * x + cos a * z)``, so the front faces world ``(sin a, cos a)``.
"""
from dataclasses import dataclass, replace
from typing import List, Sequence, Tuple

import numpy as np

from ..meta import IGNORE_INDEX, NYU13_CLASSES

LABEL = {name: index for index, name in enumerate(NYU13_CLASSES)}
TEXTURES = ('plain', 'wood', 'fabric', 'noise')
Color = Tuple[float, float, float]


@dataclass(frozen=True)
class Box:
    """An oriented box.

    Attributes:
        center (tuple): ``(x, y, z)`` world centre, metres.
        half (tuple): half extents along the box's local ``x, y, z``, metres.
        yaw (float): rotation about the world ``+y`` axis, radians.
        label (int): NYUv2-13 index, or ``-1`` for unlabelled clutter.
        color (tuple): RGB albedo in ``[0, 1]``.
        texture (str): one of :data:`TEXTURES`.
    """
    center: Tuple[float, float, float]
    half: Tuple[float, float, float]
    yaw: float
    label: int
    color: Color
    texture: str = 'plain'


def random_color(rng: np.random.Generator, low: float = 0.15, high: float = 0.9) -> Color:
    """An RGB albedo with channels uniform in ``[low, high]``."""
    return tuple(float(c) for c in rng.uniform(low, high, 3))


def to_world(origin: Sequence[float], yaw: float, x: float, z: float) -> Tuple[float, float]:
    """World ``(x, z)`` of the local point ``(x, z)`` of a frame at ``origin`` rotated by ``yaw``."""
    cos, sin = np.cos(yaw), np.sin(yaw)
    return float(origin[0] + cos * x + sin * z), float(origin[1] - sin * x + cos * z)


def place(parts: List[Box], origin: Sequence[float], yaw: float) -> List[Box]:
    """Move boxes given in a local frame into the frame where that one sits at ``origin`` rotated by ``yaw``."""
    placed = []
    for box in parts:
        x, z = to_world(origin, yaw, box.center[0], box.center[2])
        placed.append(replace(box, center=(x, box.center[1], z), yaw=box.yaw + float(yaw)))
    return placed


def part(center, half, label: int, color: Color, texture: str = 'plain') -> Box:
    """A local, unrotated box at ``center`` ``(x, y, z)`` with ``half`` extents."""
    return Box(tuple(float(c) for c in center), tuple(float(h) for h in half), 0.0, label, color, texture)


def surface_items(rng, height: float, size_x: float, size_z: float) -> List[Box]:
    """0-3 books ('books'), objects ('objects') or unlabelled clutter (-1) on a surface at ``height``."""
    items = []
    for _ in range(int(rng.integers(0, 4))):
        kind = rng.choice(['books', 'objects', 'clutter'], p=[0.4, 0.4, 0.2])
        half = (rng.uniform(0.04, min(0.15, size_x / 2)), rng.uniform(0.02, 0.12), rng.uniform(0.04, 0.1))
        x = rng.uniform(-size_x / 2 + half[0], size_x / 2 - half[0])
        z = rng.uniform(-size_z / 2 + half[2], max(-size_z / 2 + half[2], size_z / 2 - half[2]))
        label = IGNORE_INDEX if kind == 'clutter' else LABEL[kind]
        items.append(part((x, height + half[1], z), half, label, random_color(rng, 0.05, 0.95)))
    return items


def bed(rng):
    """Mattress, headboard (at the back) and a pillow, all 'bed'."""
    size_x, size_z, height = rng.uniform(1.0, 1.6), rng.uniform(1.9, 2.1), rng.uniform(0.45, 0.6)
    parts = [part((0, height / 2, 0), (size_x / 2, height / 2, size_z / 2), LABEL['bed'],
                  random_color(rng, 0.4, 0.95), 'fabric'),
             part((0, 0.5, -size_z / 2 + 0.04), (size_x / 2, 0.5, 0.04), LABEL['bed'], random_color(rng, 0.2, 0.5),
                  'wood'),
             part((0, height + 0.06, -size_z / 2 + 0.3), (size_x / 3, 0.06, 0.15), LABEL['bed'],
                  random_color(rng, 0.6, 0.95), 'fabric')]
    return parts, (size_x, size_z)


def sofa(rng):
    """Seat, back and two arms, all 'sofa'."""
    size_x, size_z = rng.uniform(1.5, 2.2), rng.uniform(0.8, 0.95)
    cloth, label = random_color(rng, 0.1, 0.7), LABEL['sofa']
    parts = [part((0, 0.21, 0.05), (size_x / 2 - 0.15, 0.21, size_z / 2 - 0.05), label, cloth, 'fabric'),
             part((0, 0.42, -size_z / 2 + 0.1), (size_x / 2, 0.42, 0.1), label, cloth, 'fabric')]
    parts += [part((side * (size_x / 2 - 0.075), 0.3, 0), (0.075, 0.3, size_z / 2), label, cloth, 'fabric')
              for side in (-1, 1)]
    return parts, (size_x, size_z)


def cabinet(rng):
    """A cabinet, dresser or bookshelf ('furniture'); books or objects on top when it is low enough."""
    size_x, size_z, height = rng.uniform(0.6, 1.4), rng.uniform(0.35, 0.55), rng.uniform(0.5, 2.0)
    parts = [part((0, height / 2, 0), (size_x / 2, height / 2, size_z / 2), LABEL['furniture'],
                  random_color(rng, 0.2, 0.8), 'wood')]
    if height < 1.6:
        parts += surface_items(rng, height, size_x, size_z)
    return parts, (size_x, size_z)


def tv_stand(rng):
    """A low cabinet ('furniture') with a TV ('tv') standing on it."""
    size_x, size_z, height = rng.uniform(1.0, 1.6), rng.uniform(0.35, 0.45), rng.uniform(0.4, 0.6)
    tv_x, tv_y = rng.uniform(0.7, min(1.3, size_x)), rng.uniform(0.4, 0.75)
    parts = [part((0, height / 2, 0), (size_x / 2, height / 2, size_z / 2), LABEL['furniture'],
                  random_color(rng, 0.2, 0.7), 'wood'),
             part((0, height + tv_y / 2, 0), (tv_x / 2, tv_y / 2, 0.03), LABEL['tv'], random_color(rng, 0.02, 0.12))]
    return parts, (size_x, size_z)


def chair(color: Color) -> List[Box]:
    """Seat, back (at local ``-z``) and four legs, all 'chair'."""
    label = LABEL['chair']
    parts = [part((0, 0.45, 0), (0.22, 0.025, 0.22), label, color),
             part((0, 0.72, -0.2), (0.22, 0.25, 0.02), label, color)]
    parts += [part((sx * 0.19, 0.21, sz * 0.19), (0.02, 0.21, 0.02), label, color) for sx in (-1, 1)
              for sz in (-1, 1)]
    return parts


def table_with_chairs(rng):
    """A table (top and four legs, 'table'), items on it and 0-4 chairs facing it."""
    size_x, size_z, height = rng.uniform(0.8, 1.6), rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.78)
    wood, label = random_color(rng, 0.25, 0.75), LABEL['table']
    parts = [part((0, height - 0.02, 0), (size_x / 2, 0.02, size_z / 2), label, wood, 'wood')]
    parts += [part((sx * (size_x / 2 - 0.05), (height - 0.04) / 2, sz * (size_z / 2 - 0.05)),
                   (0.025, (height - 0.04) / 2, 0.025), label, wood, 'wood') for sx in (-1, 1) for sz in (-1, 1)]
    parts += surface_items(rng, height, size_x, size_z)
    color = random_color(rng, 0.1, 0.8)
    sides = [(0.0, 1.0), (0.0, -1.0), (1.0, 0.0), (-1.0, 0.0)]
    for side in rng.permutation(4)[:int(rng.integers(0, 5))]:
        along, across = sides[side]
        offset = (along * (size_x / 2 + 0.3), across * (size_z / 2 + 0.3))
        parts += place(chair(color), offset, float(np.arctan2(-along, -across)))
    return parts, (size_x + 1.2, size_z + 1.2)


WALL_FURNITURE = {'bed': bed, 'sofa': sofa, 'cabinet': cabinet, 'tv_stand': tv_stand}
