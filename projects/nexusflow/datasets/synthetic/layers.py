"""Data classes of the synthetic city's layers (global map frame, metres) and a rectangle helper."""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
from shapely.geometry import Polygon

from .geometry import PlanarFrame
from .styles import CityStyle


@dataclass
class Lane:
    """A directed lane (on a road piece) or lane connector (through an intersection), global frame."""
    name: str
    arcline: Dict                  # ``arcline_path_3`` record of its centre line
    polygon: np.ndarray            # float64 [N, 2], counter-clockwise exterior
    width: float
    is_connector: bool
    successors: List[int] = field(default_factory=list)
    predecessors: List[int] = field(default_factory=list)
    turn: str = ''                 # connectors: 'straight', 'left' or 'right'
    boundaries: Dict[str, Tuple[np.ndarray, str]] = field(default_factory=dict)  # 'left'/'right' -> (ends, type)


@dataclass
class RoadPiece:
    """A straight stretch of street between two intersection mouths (a non-intersection road segment)."""
    name: str
    polygon: np.ndarray            # [4, 2] CCW
    start: np.ndarray              # [2] centre-line end points, global
    end: np.ndarray
    half_width: float
    block_polygons: Tuple[np.ndarray, np.ndarray]  # half road travelled along +axis, along -axis
    lane_ids: Dict[int, List[int]] = field(default_factory=dict)  # +1 / -1 -> lane indices, innermost first


@dataclass
class RoadNetwork:
    """All layers of one city, global frame, metres. Built by :func:`build_road_network`."""
    style: CityStyle
    frame: PlanarFrame
    intersections: List[Dict] = field(default_factory=list)   # {name, polygon, centre}
    pieces: List[RoadPiece] = field(default_factory=list)
    lanes: List[Lane] = field(default_factory=list)
    crossings: List[Dict] = field(default_factory=list)       # {name, polygon, centre, across, length, segment}
    stop_lines: List[Dict] = field(default_factory=list)      # {name, polygon, crossing, block}
    dividers: List[Dict] = field(default_factory=list)        # {name, kind, points, piece, segment_type}
    walkways: List[Dict] = field(default_factory=list)        # {name, polygon, centreline}
    carparks: List[Dict] = field(default_factory=list)        # {name, polygon, orientation}
    drivable: List[Polygon] = field(default_factory=list)     # shapely polygons (with holes), global

    @property
    def road_lanes(self) -> List[int]:
        """Indices of the lanes on road pieces (not connectors), in build order."""
        return [i for i, lane in enumerate(self.lanes) if not lane.is_connector]


def rectangle(centre: np.ndarray, axis: np.ndarray, half_len: float, half_wid: float) -> np.ndarray:
    """Counter-clockwise corners ``[4, 2]`` of the rectangle centred at ``centre`` with its length along ``axis``."""
    normal = np.array([-axis[1], axis[0]])
    return np.stack([centre - axis * half_len - normal * half_wid, centre + axis * half_len - normal * half_wid,
                     centre + axis * half_len + normal * half_wid, centre - axis * half_len + normal * half_wid])
