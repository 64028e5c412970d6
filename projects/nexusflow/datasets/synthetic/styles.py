"""Per-city look and rules of the synthetic world, and the object classes that move in it.

The two cities differ the way Boston and Singapore do in nuScenes, so that a geographic split has a real domain
gap: right-hand traffic in Boston and left-hand traffic in Singapore; dark asphalt with double yellow centre
lines in Boston and lighter, warmer asphalt with white lines in Singapore; grey-brown versus green verges; a pale
overcast sky versus a bright tropical one; and different sun positions and brightness. Colours are RGB uint8.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

RGB = Tuple[int, int, int]


@dataclass(frozen=True)
class CityStyle:
    """Road rules, layout parameters, palette, lighting and log naming of one city (one nuScenes location)."""
    location: str
    map_hash: str                      # name of the semantic-prior PNG (devkit ``map_expansion/bitmap.py``)
    canvas_edge: Tuple[float, float]   # map width, height in metres (devkit ``NuScenesMap`` docstring)
    right_hand_traffic: bool
    grid_angle_deg: float              # heading of the street grid's x axis in the global frame
    city_size: float                   # side of the square street grid in metres
    block_spacing: Tuple[float, float]  # range of the distance between parallel streets, metres
    lane_width: float
    two_lane_prob: float               # probability that a street has 2 lanes per direction (else 1)
    sidewalk_width: float = 3.0
    mouth_length: float = 8.0          # intersection arms: crossing + stop line area beyond the road square
    crossing_depth: float = 4.0
    # palette
    offroad: RGB = (110, 105, 95)
    asphalt: RGB = (70, 70, 72)
    sidewalk: RGB = (160, 158, 152)
    kerb: RGB = (195, 195, 190)
    carpark: RGB = (120, 120, 118)
    paint_white: RGB = (235, 235, 230)
    centre_line: RGB = (225, 180, 40)
    centre_line_double: bool = True
    edge_line: RGB = (235, 235, 230)
    dash_pattern: Tuple[float, float] = (3.0, 9.0)  # lane divider dash and gap lengths, metres
    mottle: float = 10.0                # amplitude of the low-frequency ground texture, grey levels
    # light
    sky_zenith: RGB = (150, 170, 195)
    sky_horizon: RGB = (205, 210, 215)
    haze: RGB = (185, 188, 192)
    brightness: float = 1.0
    sun_azimuth_deg: float = 200.0
    sun_elevation_deg: float = 40.0
    ambient: float = 0.45
    # logs
    vehicle: str = 'n008'
    utc_offset_hours: int = -4
    first_date: str = '2018-08-01'
    start_hour: int = 15
    tags: Tuple[str, ...] = field(default_factory=tuple)


CITY_STYLES: Dict[str, CityStyle] = {
    'boston-seaport': CityStyle(
        location='boston-seaport', map_hash='36092f0b03a857c6a3403e25b4b7aab3', canvas_edge=(2979.5, 2118.1),
        right_hand_traffic=True, grid_angle_deg=0.0, city_size=1000.0, block_spacing=(115.0, 165.0),
        lane_width=3.6, two_lane_prob=0.45,
        offroad=(112, 104, 92), asphalt=(62, 63, 66), sidewalk=(158, 156, 150), kerb=(190, 190, 186),
        carpark=(96, 96, 98), paint_white=(232, 232, 228), centre_line=(226, 178, 38), centre_line_double=True,
        edge_line=(232, 232, 228), dash_pattern=(3.0, 9.0), mottle=9.0,
        sky_zenith=(138, 156, 182), sky_horizon=(200, 204, 210), haze=(178, 182, 188), brightness=0.92,
        sun_azimuth_deg=215.0, sun_elevation_deg=35.0, ambient=0.65,
        vehicle='n008', utc_offset_hours=-4, first_date='2018-08-01', start_hour=15,
        tags=('right-hand traffic', 'double yellow centre line')),
    'singapore-onenorth': CityStyle(
        location='singapore-onenorth', map_hash='53992ee3023e5494b90c316c183be829', canvas_edge=(1585.6, 2025.0),
        right_hand_traffic=False, grid_angle_deg=28.0, city_size=900.0, block_spacing=(105.0, 150.0),
        lane_width=3.4, two_lane_prob=0.5,
        offroad=(88, 122, 70), asphalt=(112, 106, 98), sidewalk=(186, 176, 160), kerb=(215, 210, 198),
        carpark=(138, 132, 124), paint_white=(245, 245, 240), centre_line=(245, 245, 240),
        centre_line_double=False, edge_line=(245, 245, 240), dash_pattern=(2.0, 4.0), mottle=12.0,
        sky_zenith=(92, 150, 222), sky_horizon=(215, 222, 228), haze=(206, 208, 200), brightness=1.08,
        sun_azimuth_deg=80.0, sun_elevation_deg=62.0, ambient=0.5,
        vehicle='n015', utc_offset_hours=8, first_date='2018-07-24', start_hour=11,
        tags=('left-hand traffic', 'white centre line')),
}


@dataclass(frozen=True)
class ObjectClass:
    """A nuScenes category that the traffic simulation spawns, with sizes (metres), speeds (m/s) and colours."""
    category: str
    size_wlh: Tuple[float, float, float]      # mean width, length, height (nuScenes ``size`` order)
    size_jitter: float                        # relative uniform jitter of each dimension
    speed: Tuple[float, float]
    colours: Tuple[RGB, ...]
    moving_attribute: str
    still_attribute: str


VEHICLE_CLASSES: Tuple[Tuple[ObjectClass, float], ...] = (  # (class, spawn weight)
    (ObjectClass('vehicle.car', (1.9, 4.6, 1.6), 0.08, (5.0, 11.0),
                 ((50, 100, 215), (35, 150, 215), (100, 100, 220), (30, 175, 185)),
                 'vehicle.moving', 'vehicle.stopped'), 0.8),
    (ObjectClass('vehicle.truck', (2.5, 7.5, 3.0), 0.12, (4.0, 8.5),
                 ((225, 130, 30), (230, 170, 40), (200, 100, 35)), 'vehicle.moving', 'vehicle.stopped'), 0.12),
    (ObjectClass('vehicle.bus.rigid', (2.9, 11.0, 3.3), 0.06, (4.0, 8.0),
                 ((200, 40, 45), (40, 150, 70)), 'vehicle.moving', 'vehicle.stopped'), 0.08),
)

VEHICLE_NAMES = ('car', 'truck', 'bus')   # nuScenes detection names of VEHICLE_CLASSES, in order


def vehicle_weights(mix: Optional[Dict[str, float]] = None) -> Tuple[float, ...]:
    """Spawn weights of ``VEHICLE_CLASSES`` from ``{detection name: weight}`` (None: the default mix).

    Names left out get weight 0; the weights are relative (normalised when drawing).

    Raises:
        ValueError: an unknown name, a negative or non-finite weight, or weights that sum to 0.
    """
    if mix is None:
        return tuple(weight for _, weight in VEHICLE_CLASSES)
    unknown = sorted(set(mix) - set(VEHICLE_NAMES))
    if unknown:
        raise ValueError(f'vehicle_mix names {unknown} are not synthetic vehicle classes; use {list(VEHICLE_NAMES)}')
    weights = tuple(float(mix.get(name, 0.0)) for name in VEHICLE_NAMES)
    if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f'vehicle_mix weights must be finite, >= 0 and not all 0, got {dict(mix)}')
    return weights


PEDESTRIAN_CLASS = ObjectClass('human.pedestrian.adult', (0.68, 0.72, 1.74), 0.1, (0.9, 1.7),
                               ((150, 40, 140), (110, 30, 110), (185, 70, 160)),
                               'pedestrian.moving', 'pedestrian.standing')
