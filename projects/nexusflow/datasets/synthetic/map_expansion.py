"""Serialise a :class:`RoadNetwork` as a nuScenes map expansion JSON (``maps/expansion/<location>.json``, v1.3).

Follows the record layout that ``nuscenes.map_expansion.map_api.NuScenesMap`` 1.2.0 reads: geometric layers
``node`` / ``line`` / ``polygon``; polygon layers with ``polygon_token`` (``drivable_area`` with ``polygon_tokens``);
line layers with ``line_token``; ``lane`` records with ``left/right_lane_divider_segments``; ``stop_line`` cues;
``connectivity`` and ``arcline_path_3`` keyed by lane / lane connector token. Every token resolves. Divider lines
are straight node chains, so clipping one to any rectangle yields a single LineString (the devkit's
``mask_for_lines`` cannot iterate a shapely-2 MultiLineString).
"""
from typing import Dict, Iterable, List

import numpy as np

from .layers import RoadNetwork
from .tokens import TokenFactory

MAP_VERSION = '1.3'
COORD_DECIMALS = 4   # node coordinates are rounded to 0.1 mm

POLYGON_LAYERS = ('drivable_area', 'road_segment', 'road_block', 'lane', 'ped_crossing', 'walkway', 'stop_line',
                  'carpark_area')
LINE_LAYERS = ('road_divider', 'lane_divider', 'traffic_light')


class _MapWriter:
    """Accumulates geometric and semantic records with deterministic UUID tokens."""

    def __init__(self, tokens: TokenFactory, location: str, canvas_edge):
        self._uuid = lambda *names: tokens.uuid('map', location, *names)
        self.doc = {'version': MAP_VERSION, 'canvas_edge': [float(v) for v in canvas_edge],
                    'node': [], 'line': [], 'polygon': []}
        for layer in POLYGON_LAYERS + LINE_LAYERS + ('lane_connector',):
            self.doc[layer] = []
        self.doc['arcline_path_3'] = {}
        self.doc['connectivity'] = {}

    def token(self, *names) -> str:
        """UUID-formatted token of a semantic record."""
        return self._uuid(*names)

    def node(self, name: str, xy: np.ndarray) -> str:
        """Add a node at ``xy`` (global, m); returns its token."""
        token = self._uuid('node', name)
        self.doc['node'].append({'token': token, 'x': round(float(xy[0]), COORD_DECIMALS),
                                 'y': round(float(xy[1]), COORD_DECIMALS)})
        return token

    def nodes(self, name: str, pts: np.ndarray) -> List[str]:
        """Add one node per point of ``pts`` ``[K, 2]``; returns their tokens."""
        return [self.node(f'{name}#{k}', p) for k, p in enumerate(pts)]

    def line(self, name: str, pts: np.ndarray) -> str:
        """Add a line through ``pts`` ``[K, 2]``; returns its token."""
        return self.line_with_nodes(name, pts)[0]

    def line_with_nodes(self, name: str, pts: np.ndarray):
        """Add a line through ``pts`` ``[K, 2]``; returns (line token, its node tokens)."""
        token, nodes = self._uuid('line', name), self.nodes(f'line/{name}', pts)
        self.doc['line'].append({'token': token, 'node_tokens': nodes})
        return token, nodes

    def polygon(self, name: str, exterior: np.ndarray, holes: Iterable[np.ndarray] = ()) -> str:
        """Add a polygon (exterior ``[K, 2]`` counter-clockwise, holes clockwise); returns its token."""
        token = self._uuid('polygon', name)
        self.doc['polygon'].append({'token': token, 'exterior_node_tokens': self.nodes(f'poly/{name}', exterior),
                                    'holes': [{'node_tokens': self.nodes(f'poly/{name}/hole{k}', hole)}
                                              for k, hole in enumerate(holes)]})
        return token

    def add(self, layer: str, record: Dict) -> str:
        """Append ``record`` to ``layer``; returns its token."""
        self.doc[layer].append(record)
        return record['token']


def _write_segments(w: _MapWriter, net: RoadNetwork) -> Dict[str, List[str]]:
    """drivable_area, road_segment and road_block records; returns their tokens by kind."""
    area = w.token('drivable_area', 0)
    w.add('drivable_area', {'token': area, 'polygon_tokens': [
        w.polygon(f'drivable{k}', np.asarray(p.exterior.coords)[:-1], [np.asarray(h.coords)[:-1] for h in p.interiors])
        for k, p in enumerate(net.drivable)]})
    inter_tokens = [w.add('road_segment', {'token': w.token('road_segment', x['name']),
                                           'polygon_token': w.polygon(x['name'], x['polygon']),
                                           'is_intersection': True, 'drivable_area_token': area})
                    for x in net.intersections]
    piece_tokens, block_tokens = [], []
    for piece in net.pieces:
        seg = w.add('road_segment', {'token': w.token('road_segment', piece.name),
                                     'polygon_token': w.polygon(piece.name, piece.polygon),
                                     'is_intersection': False, 'drivable_area_token': area})
        piece_tokens.append(seg)
        for k, poly in enumerate(piece.block_polygons):
            # a block rectangle's corners run (start-right, end-right, end-left, start-left) along +axis
            ends = (poly[[0, 3]], poly[[1, 2]]) if k == 0 else (poly[[2, 1]], poly[[3, 0]])
            block_tokens.append(w.add('road_block', {
                'token': w.token('road_block', piece.name, k),
                'polygon_token': w.polygon(f'{piece.name}/block{k}', poly),
                'from_edge_line_token': w.line(f'{piece.name}/block{k}/from', ends[0]),
                'to_edge_line_token': w.line(f'{piece.name}/block{k}/to', ends[1]), 'road_segment_token': seg}))
    return {'intersection': inter_tokens, 'piece': piece_tokens, 'block': block_tokens}


def _write_lanes(w: _MapWriter, net: RoadNetwork) -> None:
    """lane and lane_connector records, their arcline paths and the connectivity graph."""
    tokens = [w.token('lane_connector' if lane.is_connector else 'lane', lane.name) for lane in net.lanes]
    for token, lane in zip(tokens, net.lanes):
        poly = w.polygon(lane.name, lane.polygon)
        if lane.is_connector:
            w.add('lane_connector', {'token': token, 'polygon_token': poly})
        else:
            segments = {}
            for side in ('left', 'right'):
                ends, seg_type = lane.boundaries[side]
                segments[side] = [{'node_token': t, 'segment_type': seg_type}
                                  for t in w.nodes(f'{lane.name}/{side}', ends)]
            w.add('lane', {'token': token, 'polygon_token': poly, 'lane_type': 'CAR',
                           'from_edge_line_token': w.line(f'{lane.name}/from', lane.polygon[[0, 3]]),
                           'to_edge_line_token': w.line(f'{lane.name}/to', lane.polygon[[1, 2]]),
                           'left_lane_divider_segments': segments['left'],
                           'right_lane_divider_segments': segments['right']})
        w.doc['arcline_path_3'][token] = [lane.arcline]
        w.doc['connectivity'][token] = {'incoming': [tokens[i] for i in lane.predecessors],
                                        'outgoing': [tokens[i] for i in lane.successors]}


def _write_furniture(w: _MapWriter, net: RoadNetwork, seg_tokens: Dict[str, List[str]]) -> None:
    """ped_crossing, stop_line, walkway, carpark_area, road_divider and lane_divider records."""
    crossing_tokens = [w.add('ped_crossing', {'token': w.token('ped_crossing', c['name']),
                                              'polygon_token': w.polygon(c['name'], c['polygon']),
                                              'road_segment_token': seg_tokens['intersection'][c['segment']]})
                       for c in net.crossings]
    for stop in net.stop_lines:
        w.add('stop_line', {'token': w.token('stop_line', stop['name']),
                            'polygon_token': w.polygon(stop['name'], stop['polygon']),
                            'stop_line_type': 'PED_CROSSING',
                            'ped_crossing_tokens': [crossing_tokens[stop['crossing']]],
                            'traffic_light_tokens': [],
                            'road_block_token': seg_tokens['block'][2 * stop['piece'] + stop['block']]})
    for walk in net.walkways:
        w.add('walkway', {'token': w.token('walkway', walk['name']),
                          'polygon_token': w.polygon(walk['name'], walk['polygon'])})
    for park in net.carparks:
        w.add('carpark_area', {'token': w.token('carpark_area', park['name']),
                               'polygon_token': w.polygon(park['name'], park['polygon']),
                               'orientation': park['orientation']})
    for div in net.dividers:
        line, nodes = w.line_with_nodes(div['name'], div['points'])
        if div['kind'] == 'road':
            w.add('road_divider', {'token': w.token('road_divider', div['name']), 'line_token': line,
                                   'road_segment_token': seg_tokens['piece'][div['piece']]})
        else:
            w.add('lane_divider', {'token': w.token('lane_divider', div['name']), 'line_token': line,
                                   'lane_divider_segments': [{'node_token': t, 'segment_type': div['segment_type']}
                                                             for t in nodes]})


def build_map_expansion(net: RoadNetwork, tokens: TokenFactory) -> Dict:
    """The map expansion document of ``net``.

    Args:
        net (RoadNetwork): the city, global frame (metres).
        tokens (TokenFactory): seeded token maker; map tokens are UUID-formatted.

    Returns:
        dict: JSON-serialisable map expansion (version "1.3", every key ``NuScenesMap`` reads; ``traffic_light``
        is empty).
    """
    w = _MapWriter(tokens, net.style.location, net.style.canvas_edge)
    seg_tokens = _write_segments(w, net)
    _write_lanes(w, net)
    _write_furniture(w, net, seg_tokens)
    return w.doc
