"""The street network of one synthetic city: a grid of straight two-way streets with intersections.

Everything is laid out in a grid frame (streets along its x and y axes) and stored in the global map frame
(x east, y north, metres) after a rotation by ``CityStyle.grid_angle_deg`` and a shift that centres the grid on the
map canvas. Each street has 1 or 2 lanes per direction for its whole length. An intersection is the square where two
streets cross plus an 8 m "mouth" on every arm that holds a zebra crossing and a stop line; lanes run between
mouths ("road pieces") and lane connectors (straight, near-side and far-side turns) run through intersections.
Traffic keeps right in right-hand cities and left otherwise. Sidewalks ring every block, a few blocks hold a car
park, and the drivable area is the union of road pieces and intersections (one polygon with a hole per block).

Layers consumed by ``map_expansion`` (nuScenes map JSON), ``raster`` (ground texture) and ``traffic`` (routes).
"""
import zlib
from typing import Dict, List, Tuple

import numpy as np
from shapely import union_all
from shapely.geometry import Polygon, box
from shapely.geometry.polygon import orient

from .geometry import PlanarFrame, make_arcline, sample_arcline
from .intersections import build_crossings, build_connectors
from .layers import Lane, RoadNetwork, RoadPiece, rectangle
from .styles import CityStyle

DIVIDER_NODE_SPACING = 10.0   # metres between the collinear nodes of a divider line
GRID_SNAP = 1e-6              # metres; polygons are snapped to this grid before unions so shared edges match


def _grid_lines(rng: np.random.Generator, style: CityStyle) -> np.ndarray:
    """Street positions along one grid axis, metres from 0 to about ``city_size`` (at least 3 streets)."""
    lines = [0.0]
    while True:
        step = rng.uniform(*style.block_spacing)
        if lines[-1] + step > style.city_size and len(lines) >= 3:
            return np.array(lines)
        lines.append(lines[-1] + step)


class _GridLayout:
    """Grid-frame street positions, lane counts and the frame into the global map; shared by the builders."""

    def __init__(self, style: CityStyle, rng: np.random.Generator):
        self.style = style
        self.xs, self.ys = _grid_lines(rng, style), _grid_lines(rng, style)
        self.lanes_v = np.where(rng.random(len(self.xs)) < style.two_lane_prob, 2, 1)
        self.lanes_h = np.where(rng.random(len(self.ys)) < style.two_lane_prob, 2, 1)
        self.lanes_v[rng.integers(len(self.xs))] = 2
        self.lanes_h[rng.integers(len(self.ys))] = 2
        self.hw_v = self.lanes_v * style.lane_width     # half width of vertical street i
        self.hw_h = self.lanes_h * style.lane_width
        angle = np.deg2rad(style.grid_angle_deg)
        centre_grid = np.array([self.xs[-1], self.ys[-1]]) / 2.0
        rot = PlanarFrame(angle).rotation
        centre_map = np.array(style.canvas_edge) / 2.0
        self.frame = PlanarFrame(angle, tuple(centre_map - rot @ centre_grid))

    def node(self, i: int, j: int) -> np.ndarray:
        """Grid-frame centre ``[2]`` of intersection (i, j)."""
        return np.array([self.xs[i], self.ys[j]])

    def arms(self, i: int, j: int) -> List[Tuple[str, np.ndarray]]:
        """Existing arms of intersection (i, j): (name, outward unit vector in the grid frame)."""
        arms = [('E', i < len(self.xs) - 1, (1.0, 0.0)), ('N', j < len(self.ys) - 1, (0.0, 1.0)),
                ('W', i > 0, (-1.0, 0.0)), ('S', j > 0, (0.0, -1.0))]
        return [(name, np.array(vec)) for name, ok, vec in arms if ok]

    def half_widths(self, i: int, j: int, outward: np.ndarray) -> Tuple[float, float]:
        """(half width of the arm's street, half width of the crossing street) at intersection (i, j)."""
        return (self.hw_h[j], self.hw_v[i]) if abs(outward[0]) > 0.5 else (self.hw_v[i], self.hw_h[j])

    def mouth_end(self, i: int, j: int, outward: np.ndarray) -> float:
        """Distance from the intersection centre to the end of the arm's mouth, metres."""
        return self.half_widths(i, j, outward)[1] + self.style.mouth_length


def _intersection_polygons(layout: _GridLayout) -> List[Dict]:
    """Plus-shaped intersection polygons (grid frame): list of {name, ij, grid_polygon, centre}."""
    out = []
    for i in range(len(layout.xs)):
        for j in range(len(layout.ys)):
            c = layout.node(i, j)
            parts = [box(c[0] - layout.hw_v[i], c[1] - layout.hw_h[j], c[0] + layout.hw_v[i], c[1] + layout.hw_h[j])]
            for _, out_vec in layout.arms(i, j):
                arm_hw, cross_hw = layout.half_widths(i, j, out_vec)
                mid = c + out_vec * (cross_hw + layout.style.mouth_length / 2.0)
                parts.append(Polygon(rectangle(mid, out_vec, layout.style.mouth_length / 2.0, arm_hw)))
            poly = orient(union_all(parts, grid_size=GRID_SNAP).simplify(0.0), 1.0)
            out.append({'name': f'x{i}-{j}', 'ij': (i, j), 'grid_polygon': poly, 'centre': c})
    return out


def _piece_specs(layout: _GridLayout) -> List[Dict]:
    """Grid-frame geometry of every road piece: name, end nodes, axis, start/end of the centre line."""
    specs = []
    for j in range(len(layout.ys)):
        for i in range(len(layout.xs) - 1):
            specs.append({'name': f'h{j}-{i}', 'a': (i, j), 'b': (i + 1, j), 'axis': np.array([1.0, 0.0]),
                          'lanes': int(layout.lanes_h[j]), 'hw': float(layout.hw_h[j])})
    for i in range(len(layout.xs)):
        for j in range(len(layout.ys) - 1):
            specs.append({'name': f'v{i}-{j}', 'a': (i, j), 'b': (i, j + 1), 'axis': np.array([0.0, 1.0]),
                          'lanes': int(layout.lanes_v[i]), 'hw': float(layout.hw_v[i])})
    for spec in specs:
        axis = spec['axis']
        spec['start'] = layout.node(*spec['a']) + axis * layout.mouth_end(*spec['a'], axis)
        spec['end'] = layout.node(*spec['b']) - axis * layout.mouth_end(*spec['b'], -axis)
    return specs


def _boundary_type(style: CityStyle, lateral: float, half_width: float) -> str:
    """nuScenes divider segment type of a lane boundary ``lateral`` metres from the street centre."""
    if abs(lateral) < 1e-6:
        return 'DOUBLE_SOLID_YELLOW' if style.centre_line_double else 'SINGLE_SOLID_WHITE'
    if abs(abs(lateral) - half_width) < 1e-6:
        return 'NIL'
    return 'DOUBLE_DASHED_WHITE'


def _piece_lanes(net: RoadNetwork, spec: Dict) -> Dict[int, List[int]]:
    """Create the lanes of one road piece (global frame); returns {+1/-1: lane indices, innermost first}."""
    style, frame = net.style, net.frame
    axis, normal = spec['axis'], np.array([-spec['axis'][1], spec['axis'][0]])
    side = -1.0 if style.right_hand_traffic else 1.0
    length = float(np.linalg.norm(spec['end'] - spec['start']))
    lane_ids = {}
    for direction in (1, -1):
        lane_ids[direction] = []
        for k in range(spec['lanes']):
            lateral = side * direction * (k + 0.5) * style.lane_width
            origin = (spec['start'] if direction > 0 else spec['end']) + normal * lateral
            travel = axis * direction
            centre = origin + travel * length / 2.0
            start = frame.points(origin)
            yaw = float(np.arctan2(*frame.vectors(travel)[::-1]))
            boundaries = {}
            for name, sign in (('left', 1.0), ('right', -1.0)):
                off = lateral + sign * direction * style.lane_width / 2.0
                ends = np.stack([origin, origin + travel * length]) + normal * (off - lateral)
                boundaries[name] = (frame.points(ends), _boundary_type(style, off, spec['hw']))
            lane = Lane(name=f"{spec['name']}/{'+' if direction > 0 else '-'}{k}",
                        arcline=make_arcline((start[0], start[1], yaw), 'LSL', 1000.0, (0.0, length, 0.0)),
                        polygon=frame.points(rectangle(centre, travel, length / 2.0, style.lane_width / 2.0)),
                        width=style.lane_width, is_connector=False, boundaries=boundaries)
            lane_ids[direction].append(len(net.lanes))
            net.lanes.append(lane)
    return lane_ids


def _piece_dividers(net: RoadNetwork, spec: Dict, piece_idx: int) -> None:
    """Road divider on the centre line and lane dividers between same-direction lanes: straight node chains."""
    style, frame = net.style, net.frame
    normal = np.array([-spec['axis'][1], spec['axis'][0]])
    length = float(np.linalg.norm(spec['end'] - spec['start']))
    num = max(2, int(np.ceil(length / DIVIDER_NODE_SPACING)) + 1)
    t = np.linspace(0.0, 1.0, num)[:, None]
    offsets = [('road', 0.0)] + [('lane', s * style.lane_width * k) for k in range(1, spec['lanes']) for s in (1, -1)]
    for n, (kind, off) in enumerate(offsets):
        pts = spec['start'] + t * (spec['end'] - spec['start']) + normal * off
        net.dividers.append({'name': f"{spec['name']}/{kind}{n}", 'kind': kind, 'points': frame.points(pts),
                             'piece': piece_idx, 'segment_type': _boundary_type(style, off, spec['hw'])})


def _build_pieces(net: RoadNetwork, specs: List[Dict]) -> Dict[Tuple, Dict]:
    """Road pieces with their lanes and dividers; returns {(node, outward arm vector): piece info} for connectors."""
    arm_index = {}
    for spec in specs:
        idx = len(net.pieces)
        axis, hw = spec['axis'], spec['hw']
        length = float(np.linalg.norm(spec['end'] - spec['start']))
        centre = (spec['start'] + spec['end']) / 2.0
        normal = np.array([-axis[1], axis[0]])
        plus_side = -1.0 if net.style.right_hand_traffic else 1.0
        blocks = tuple(net.frame.points(rectangle(centre + normal * s * hw / 2.0, axis, length / 2.0, hw / 2.0))
                       for s in (plus_side, -plus_side))
        piece = RoadPiece(name=spec['name'], polygon=net.frame.points(rectangle(centre, axis, length / 2.0, hw)),
                          start=net.frame.points(spec['start']), end=net.frame.points(spec['end']), half_width=hw,
                          block_polygons=blocks)
        net.pieces.append(piece)
        piece.lane_ids = _piece_lanes(net, spec)
        _piece_dividers(net, spec, idx)
        # block 0 carries traffic along +axis (towards node b), block 1 along -axis (towards node a)
        arm_index[(spec['a'], tuple(axis))] = {'piece': idx, 'outgoing': piece.lane_ids[1],
                                               'incoming': piece.lane_ids[-1], 'incoming_block': 1}
        arm_index[(spec['b'], tuple(-axis))] = {'piece': idx, 'outgoing': piece.lane_ids[-1],
                                                'incoming': piece.lane_ids[1], 'incoming_block': 0}
    return arm_index


def _build_walkways(net: RoadNetwork, layout: _GridLayout, rng: np.random.Generator) -> None:
    """Sidewalk strips around every block and outside the outer streets, plus car parks in some blocks."""
    sw = net.style.sidewalk_width
    rects = []
    for i in range(len(layout.xs) - 1):
        for j in range(len(layout.ys) - 1):
            x0, x1 = layout.xs[i] + layout.hw_v[i], layout.xs[i + 1] - layout.hw_v[i + 1]
            y0, y1 = layout.ys[j] + layout.hw_h[j], layout.ys[j + 1] - layout.hw_h[j + 1]
            rects.append((f'b{i}-{j}', (x0, y0, x1, y1)))
            if rng.random() < 0.3:
                _add_carpark(net, f'b{i}-{j}', (x0 + sw, y0 + sw, x1 - sw, y1 - sw), rng)
    gx0, gx1 = layout.xs[0] - layout.hw_v[0], layout.xs[-1] + layout.hw_v[-1]
    gy0, gy1 = layout.ys[0] - layout.hw_h[0], layout.ys[-1] + layout.hw_h[-1]
    rects.append(('outer', (gx0 - sw, gy0 - sw, gx1 + sw, gy1 + sw)))
    for name, (x0, y0, x1, y1) in rects:
        # a ring of strips just inside the rectangle: inside each block, or around the grid for 'outer'
        strips = [('s', (x0, y0, x1, y0 + sw)), ('n', (x0, y1 - sw, x1, y1)),
                  ('w', (x0, y0 + sw, x0 + sw, y1 - sw)), ('e', (x1 - sw, y0 + sw, x1, y1 - sw))]
        for side, (a0, b0, a1, b1) in strips:
            corners = np.array([[a0, b0], [a1, b0], [a1, b1], [a0, b1]])
            along_x = (a1 - a0) >= (b1 - b0)
            mid = (b0 + b1) / 2.0 if along_x else (a0 + a1) / 2.0
            line = np.array([[a0, mid], [a1, mid]]) if along_x else np.array([[mid, b0], [mid, b1]])
            net.walkways.append({'name': f'{name}/{side}', 'polygon': net.frame.points(corners),
                                 'centreline': net.frame.points(line)})


def _add_carpark(net: RoadNetwork, name: str, bounds: Tuple[float, float, float, float],
                 rng: np.random.Generator) -> None:
    """A car park rectangle hugging one side of a block interior ``bounds`` (grid frame)."""
    x0, y0, x1, y1 = bounds
    w, h = rng.uniform(28.0, 45.0), rng.uniform(16.0, 24.0)
    if rng.random() < 0.5:
        cx = rng.uniform(x0 + 2 + w / 2, x1 - 2 - w / 2)
        cy = y0 + 2 + h / 2 if rng.random() < 0.5 else y1 - 2 - h / 2
    else:
        w, h = h, w
        cy = rng.uniform(y0 + 2 + h / 2, y1 - 2 - h / 2)
        cx = x0 + 2 + w / 2 if rng.random() < 0.5 else x1 - 2 - w / 2
    corners = rectangle(np.array([cx, cy]), np.array([1.0, 0.0]), w / 2, h / 2)
    net.carparks.append({'name': f'{name}/carpark', 'polygon': net.frame.points(corners),
                         'orientation': float(net.frame.angle)})


def _build_drivable(net: RoadNetwork, grid_polys: List[Polygon]) -> None:
    """Drivable area = union of road pieces and intersections, transformed into the global frame."""
    merged = union_all(grid_polys, grid_size=GRID_SNAP)
    parts = list(merged.geoms) if merged.geom_type == 'MultiPolygon' else [merged]
    for part in parts:
        part = orient(part, 1.0)
        ext = net.frame.points(np.asarray(part.exterior.coords)[:-1])
        holes = [net.frame.points(np.asarray(h.coords)[:-1]) for h in part.interiors]
        net.drivable.append(Polygon(ext, holes))


def build_road_network(style: CityStyle, seed: int) -> RoadNetwork:
    """Lay out the city of ``style`` deterministically from ``seed``.

    Args:
        style (CityStyle): the city (location, traffic side, sizes, palette).
        seed (int): generator seed; the same seed gives the same network.

    Returns:
        RoadNetwork: every layer in the global map frame (metres).
    """
    rng = np.random.default_rng([seed, zlib.crc32(style.location.encode())])
    layout = _GridLayout(style, rng)
    net = RoadNetwork(style=style, frame=layout.frame)
    grid_inters = _intersection_polygons(layout)
    specs = _piece_specs(layout)
    arm_index = _build_pieces(net, specs)
    for inter in grid_inters:
        net.intersections.append({'name': inter['name'], 'centre': net.frame.points(inter['centre']),
                                  'polygon': net.frame.points(np.asarray(inter['grid_polygon'].exterior.coords)[:-1])})
    for k, inter in enumerate(grid_inters):
        i, j = inter['ij']
        build_connectors(net, layout, (i, j), arm_index)
        build_crossings(net, layout, (i, j), k, arm_index)
    _build_walkways(net, layout, rng)
    grid_polys = [inter['grid_polygon'] for inter in grid_inters]
    grid_polys += [Polygon(rectangle((s['start'] + s['end']) / 2, s['axis'],
                                     float(np.linalg.norm(s['end'] - s['start'])) / 2, s['hw']))
                   for s in specs]
    _build_drivable(net, grid_polys)
    return net


def sample_lane(lane: Lane, resolution: float = 0.5) -> np.ndarray:
    """Poses ``[N, 3]`` (x, y, yaw; global) every ~``resolution`` m along a lane's centre line."""
    return sample_arcline(lane.arcline, resolution)
