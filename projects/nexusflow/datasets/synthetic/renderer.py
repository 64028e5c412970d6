"""Renders the six camera images of a keyframe from the synthetic world.

Per camera: sky gradient above the horizon, haze below it out to the ground range; every ground pixel looks up the
city's top-down texture (bilinear; a 0.1 m/px window around the ego, re-rasterised when the ego has moved on) and
is blended into the haze with distance; then every mover is drawn far to near as a cuboid whose faces are shaded
by the city's sun (front faces lighter, rear faces redder, so heading is visible) and hazed with distance;
finally mild sensor noise is added. Images are RGB uint8 ``[H, W, 3]``.
"""
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .camera_model import MAX_GROUND_RANGE, CameraModel, box_corners, draw_cuboid, fog_weight
from .layers import RoadNetwork
from .raster import MOTTLE_CELL, PaintLayer, city_palette, rasterise

TILE_RESOLUTION = 0.1     # metres per texture pixel
TILE_SLACK = 24.0         # metres the ego may move before the texture window is re-rasterised
NOISE_STD = 3.0           # grey levels of per-pixel sensor noise
NOISE_MARGIN = 32         # pixels of slack in the noise bank for random offsets
FRONT_TINT = ((235, 235, 220), 0.35)   # (colour, weight) mixed into front faces (headlights / windscreen)
REAR_TINT = ((230, 70, 60), 0.35)      # mixed into rear faces (tail lights)


class GroundTiles:
    """The city's ground texture around the ego, one square window at a time.

    Args:
        layers: paint layers of the city; colours / background: palette (RGB); mottle: (table, amplitude).
    """

    def __init__(self, layers: Sequence[PaintLayer], colours: Dict, background, mottle: Tuple[np.ndarray, float]):
        self.layers, self.colours, self.background, self.mottle = layers, colours, background, mottle
        self.half = np.ceil((MAX_GROUND_RANGE + 5.0 + TILE_SLACK) / MOTTLE_CELL) * MOTTLE_CELL
        self.centre = None
        self.image = None
        self.origin = (0.0, 0.0)   # (xmin, ymax) of the window, metres

    def window(self, xy: np.ndarray) -> Tuple[np.ndarray, Tuple[float, float]]:
        """(RGB texture ``[H, W, 3]``, (xmin, ymax)) covering every ground point seen from ego position ``xy``."""
        if self.centre is None or np.abs(np.asarray(xy) - self.centre).max() > TILE_SLACK:
            self.centre = np.round(np.asarray(xy, dtype=np.float64) / MOTTLE_CELL) * MOTTLE_CELL
            x0, y0 = self.centre - self.half
            x1, y1 = self.centre + self.half
            self.image = rasterise(self.layers, self.colours, self.background, (x0, y0, x1, y1),
                                   TILE_RESOLUTION, self.mottle)
            self.origin = (float(x0), float(y1))
        return self.image, self.origin


class SceneRenderer:
    """Renders the keyframes of one scene.

    Args:
        cameras: the rig's camera models (nuScenes order).
        net: the city; layers: its paint layers; mottle_table: from ``raster.mottle_table``.
        brightness: scene light level (multiplies the city palette; about 0.9-1.1).
        noise: int16 noise bank ``[H + NOISE_MARGIN, W + NOISE_MARGIN, 3]`` shared by all scenes.
        rng: the scene's generator (noise offsets).
    """

    def __init__(self, cameras: List[CameraModel], net: RoadNetwork, layers: Sequence[PaintLayer],
                 mottle_table: np.ndarray, brightness: float, noise: np.ndarray, rng: np.random.Generator):
        style = net.style
        self.cameras, self.noise, self.rng = cameras, noise, rng
        self.gain = brightness * style.brightness
        colours, background = city_palette(net, brightness)
        self.tiles = GroundTiles(layers, colours, background, (mottle_table, style.mottle))
        self.haze = np.clip(np.asarray(style.haze, dtype=np.float64) * self.gain, 0, 255)
        self.ambient = style.ambient
        az, el = np.deg2rad(style.sun_azimuth_deg), np.deg2rad(style.sun_elevation_deg)
        self.sun = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        zenith = np.clip(np.asarray(style.sky_zenith, dtype=np.float64) * self.gain, 0, 255)
        horizon = np.clip(np.asarray(style.sky_horizon, dtype=np.float64) * self.gain, 0, 255)
        self.backgrounds = [self._background(cam, zenith, horizon) for cam in cameras]

    def _background(self, cam: CameraModel, zenith: np.ndarray, horizon: np.ndarray) -> np.ndarray:
        """Sky gradient above the horizon and haze below it, uint8 ``[H, W, 3]``."""
        t = np.clip(cam.elevation / 0.4, 0.0, 1.0)[..., None] ** 0.7
        sky = horizon + (zenith - horizon) * t
        return np.where(cam.elevation[..., None] >= 0.0, sky, self.haze).round().astype(np.uint8)

    def _ground(self, image: np.ndarray, cam: CameraModel, ego_xy: np.ndarray, ego_yaw: float) -> None:
        """Write the textured (bilinear lookup), hazed ground into ``image`` in place."""
        tile, (x0, y1) = self.tiles.window(ego_xy)
        c, s = np.float32(np.cos(ego_yaw)), np.float32(np.sin(ego_yaw))
        ex, ey = cam.ground_ego
        inv = np.float32(1.0 / TILE_RESOLUTION)
        # global point -> texture pixel coordinates (cv2 puts pixel centres at integers, hence the -0.5)
        map_x = (ex * c - ey * s + np.float32(ego_xy[0] - x0)) * inv - np.float32(0.5)
        map_y = (np.float32(y1 - ego_xy[1]) - ex * s - ey * c) * inv - np.float32(0.5)
        colour = cv2.remap(tile, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        colour = colour.reshape(-1, 3)[:len(cam.ground_index)].astype(np.uint16)
        fog = cam.ground_fog
        haze = self.haze.round().astype(np.uint16)
        image.reshape(-1, 3)[cam.ground_index] = ((colour * (256 - fog) + haze * fog) >> 8).astype(np.uint8)

    def _face_colours(self, mover, yaw: float, distance: float) -> Dict[str, Tuple[int, ...]]:
        """Shaded, tinted and hazed RGB colour of each cuboid face of ``mover`` at global heading ``yaw``."""
        c, s = np.cos(yaw), np.sin(yaw)
        normals = {'front': (c, s, 0.0), 'rear': (-c, -s, 0.0), 'left': (-s, c, 0.0), 'right': (s, -c, 0.0),
                   'top': (0.0, 0.0, 1.0)}
        base = np.asarray(mover.colour, dtype=np.float64) * self.gain
        fog = float(fog_weight(distance))
        out = {}
        for name, normal in normals.items():
            colour = base
            if name in ('front', 'rear'):
                tint, weight = FRONT_TINT if name == 'front' else REAR_TINT
                colour = colour * (1.0 - weight) + np.asarray(tint) * weight
            shade = self.ambient + (1.0 - self.ambient) * max(0.0, float(np.dot(normal, self.sun)))
            colour = colour * shade * (1.0 - fog) + self.haze * fog
            out[name] = tuple(int(v) for v in np.clip(colour, 0, 255).round())
        return out

    def render(self, ego_xy: np.ndarray, ego_yaw: float, movers: Sequence, states: Sequence[Tuple]) -> List[np.ndarray]:
        """Images of all cameras for one keyframe.

        Args:
            ego_xy: float ``[2]`` ego position, global frame (m); ego_yaw: heading (rad).
            movers: the movers (colour, size_wlh); states: per mover (xy ``[2]`` global bottom centre, yaw).

        Returns:
            list of uint8 RGB images ``[H, W, 3]``, one per camera in rig order.
        """
        c, s = np.cos(ego_yaw), np.sin(ego_yaw)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        origin = np.array([ego_xy[0], ego_xy[1], 0.0])
        corners = [(box_corners(xy, yaw, m.size_wlh) - origin) @ rot for m, (xy, yaw) in zip(movers, states)]
        distance = [float(np.linalg.norm(xy - ego_xy)) for xy, _ in states]
        faces = [self._face_colours(m, yaw, d) if d < MAX_GROUND_RANGE else None
                 for m, (_, yaw), d in zip(movers, states, distance)]
        images = []
        for cam, background in zip(self.cameras, self.backgrounds):
            image = background.copy()
            self._ground(image, cam, ego_xy, ego_yaw)
            cam_corners = [cam.ego2cam(k) for k in corners]
            order = np.argsort([-np.linalg.norm(k.mean(axis=0)) for k in cam_corners], kind='stable')
            for i in order:
                if faces[i] is not None and (cam_corners[i][:, 2] > 0.0).any():
                    draw_cuboid(image, cam, cam_corners[i], faces[i])
            images.append(self._add_noise(image))
        return images

    def _add_noise(self, image: np.ndarray) -> np.ndarray:
        """Add a randomly offset window of the noise bank (deterministic given the scene generator)."""
        height, width = image.shape[:2]
        oy, ox = self.rng.integers(0, NOISE_MARGIN, size=2)
        noisy = image.astype(np.int16) + self.noise[oy:oy + height, ox:ox + width]
        return np.clip(noisy, 0, 255).astype(np.uint8)


def noise_bank(img_size: Tuple[int, int], seed: int) -> np.ndarray:
    """Gaussian sensor noise (std NOISE_STD grey levels), int16 ``[H + NOISE_MARGIN, W + NOISE_MARGIN, 3]``."""
    width, height = img_size
    rng = np.random.default_rng([seed, 11])
    bank = rng.standard_normal((height + NOISE_MARGIN, width + NOISE_MARGIN, 3), dtype=np.float32) * NOISE_STD
    return bank.round().astype(np.int16)
