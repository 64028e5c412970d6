"""Shading of a :class:`GBuffer`: procedural textures, a ceiling lamp, daylight, ambient light and sensor noise.

Lambertian: ``rgb = albedo * texture * (ambient + lamp + daylight)``; windows glow with their own albedo. The lamp
is a point light with ``1 / (1 + 0.15 d^2)`` fall-off; daylight a directional light of random direction. Textures
are functions of the world hit point (so they stick to surfaces across views): wood planks (per-plank tone and
grain), a fabric weave, low-frequency wall noise, plain.
"""
import numpy as np

from .furniture import LABEL, TEXTURES
from .raycast import GBuffer
from .scene import Room


def _hash(values: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random numbers in ``[0, 1)`` from integers (classic ``fract(sin(x) * 43758.5)``)."""
    return np.modf(np.abs(np.sin(values * 12.9898 + 78.233) * 43758.5453))[0]


def texture_factor(texture: np.ndarray, points: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Brightness factor ``[N]`` in about ``[0.7, 1.1]`` of each hit.

    Args:
        texture (np.ndarray): ``[N]`` int index into :data:`TEXTURES`.
        points (np.ndarray): ``[N, 3]`` world hit points, metres.
        phases (np.ndarray): ``[3]`` per-room random phases.
    """
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    plank = np.floor((x + z) / 0.18)
    wood = 0.82 + 0.16 * _hash(plank) + 0.04 * np.sin(60.0 * (x - z) + 7.0 * plank)
    fabric = 0.92 + 0.06 * np.sign(np.sin(90.0 * (x + z) + phases[0]) * np.sin(90.0 * y + phases[1]))
    noise = 0.93 + 0.07 * np.sin(3.0 * x + phases[0]) * np.sin(2.0 * y + phases[1]) * np.sin(2.5 * z + phases[2])
    factors = {'plain': np.ones_like(x), 'wood': wood, 'fabric': fabric, 'noise': noise}
    return np.choose(texture, [factors[name] for name in TEXTURES])


def shade(gbuf: GBuffer, room: Room, origin: np.ndarray, dirs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB ``[N, 3]`` in ``[0, 1]`` of the hits of rays ``origin + t * dirs`` (world frame)."""
    points = origin + gbuf.depth[:, None] * dirs
    to_lamp = np.asarray(room.lamp) - points
    distance = np.linalg.norm(to_lamp, axis=1)
    lamp = rng.uniform(0.5, 0.9) * np.clip((gbuf.normal * to_lamp).sum(1) / distance, 0.0, None)
    lamp /= 1.0 + 0.15 * distance**2
    sun = rng.normal(size=3)
    sun /= np.linalg.norm(sun)
    daylight = rng.uniform(0.1, 0.35) * np.clip(gbuf.normal @ sun, 0.0, None)
    light = rng.uniform(0.3, 0.5) + lamp + daylight
    tint = rng.uniform(0.9, 1.1, 3)
    factor = texture_factor(gbuf.texture, points, rng.uniform(0.0, 2 * np.pi, 3))
    rgb = gbuf.albedo * (factor * light)[:, None] * tint
    window = gbuf.label == LABEL['window']
    rgb[window] = gbuf.albedo[window]
    return np.clip(rgb + rng.normal(0.0, 0.01, rgb.shape), 0.0, 1.0)
