"""Top-down rasters of a city: the ground texture the cameras see, the basemap and the semantic prior.

The city is turned once into ordered paint layers (polygons in the global frame tagged with a palette key):
car parks, sidewalks, asphalt, kerbs, edge lines, white paint (zebra stripes, stop lines, dashed lane dividers) and
centre lines (double yellow in Boston, single white in Singapore). :func:`rasterise` draws any window of them at any
resolution with sub-pixel accuracy; a low-frequency "mottle" keyed to global 2 m cells gives the ground a texture
that is the same in every window, so that motion is visible on plain asphalt and grass.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .layers import RoadNetwork

MOTTLE_CELL = 2.0        # metres per mottle cell; tile origins are snapped to it
MOTTLE_TABLE = 256       # the mottle pattern repeats every MOTTLE_TABLE * MOTTLE_CELL metres
KERB_WIDTH = 0.3
EDGE_LINE_INSET = 0.35   # metres from the road edge to the centre of the edge line
LINE_WIDTH = 0.15
ZEBRA_PERIOD = 1.0       # one white stripe and one gap, metres
_SHIFT = 4               # cv2 fractional bits for sub-pixel polygon vertices


@dataclass
class PaintLayer:
    """Polygons filled with one palette colour.

    ``vertices`` ``[V, 2]`` holds all polygons' vertices (global, m) back to back; polygon ``i`` is
    ``vertices[starts[i]:starts[i + 1]]``; ``bounds`` ``[P, 4]`` are (xmin, ymin, xmax, ymax) per polygon.
    """
    key: str
    vertices: np.ndarray
    starts: np.ndarray
    bounds: np.ndarray


def _strips(p0: np.ndarray, p1: np.ndarray, width: float) -> np.ndarray:
    """Rectangles ``[N, 4, 2]`` (counter-clockwise) of ``width`` metres around the segments p0[i] -> p1[i]."""
    p0, p1 = np.atleast_2d(p0), np.atleast_2d(p1)
    axis = (p1 - p0) / np.linalg.norm(p1 - p0, axis=1, keepdims=True)
    side = np.stack([-axis[:, 1], axis[:, 0]], axis=1) * (width / 2.0)
    return np.stack([p0 - side, p1 - side, p1 + side, p0 + side], axis=1)


def _strip(p0: np.ndarray, p1: np.ndarray, width: float) -> np.ndarray:
    """Rectangle ``[4, 2]`` of ``width`` metres around the segment p0 -> p1."""
    return _strips(p0, p1, width)[0]


def _dashes(p0: np.ndarray, p1: np.ndarray, width: float, dash: float, gap: float) -> List[np.ndarray]:
    """Dash rectangles along p0 -> p1 starting with a dash at p0."""
    length = float(np.linalg.norm(p1 - p0))
    axis = (p1 - p0) / length
    starts = np.arange(0.0, length, dash + gap)
    starts = starts[length - starts > 0.1]
    ends = np.minimum(starts + dash, length)
    return list(_strips(p0 + starts[:, None] * axis, p0 + ends[:, None] * axis, width))


def _zebra(crossing: Dict) -> List[np.ndarray]:
    """White stripes of a zebra crossing: bars along the traffic direction, spaced across the road."""
    half = crossing['length'] / 2.0
    offsets = np.arange(-half + ZEBRA_PERIOD / 2.0, half - ZEBRA_PERIOD / 4.0, ZEBRA_PERIOD)
    centres = crossing['centre'] + offsets[:, None] * crossing['across']
    reach = crossing['outward'] * crossing['depth'] / 2.0
    return list(_strips(centres - reach, centres + reach, ZEBRA_PERIOD / 2.0))


def _rings(net: RoadNetwork) -> List[np.ndarray]:
    """Kerb strips along every edge of the drivable area's rings."""
    out = []
    for poly in net.drivable:
        for ring in [poly.exterior] + list(poly.interiors):
            pts = np.asarray(ring.coords)
            out.extend(_strip(a, b, KERB_WIDTH) for a, b in zip(pts[:-1], pts[1:]) if np.linalg.norm(b - a) > 1e-3)
    return out


def _lines(net: RoadNetwork) -> Tuple[List[np.ndarray], List[np.ndarray], List[np.ndarray]]:
    """(edge lines, white paint, centre lines) polygons of the road markings."""
    style = net.style
    edges, white, centre = [], [], []
    for piece in net.pieces:
        axis = (piece.end - piece.start) / np.linalg.norm(piece.end - piece.start)
        normal = np.array([-axis[1], axis[0]])
        for s in (1.0, -1.0):
            off = normal * s * (piece.half_width - EDGE_LINE_INSET)
            edges.append(_strip(piece.start + off, piece.end + off, LINE_WIDTH))
    for div in net.dividers:
        p0, p1 = div['points'][0], div['points'][-1]
        if div['kind'] == 'lane':
            white.extend(_dashes(p0, p1, LINE_WIDTH, *style.dash_pattern))
        elif style.centre_line_double:
            axis = (p1 - p0) / np.linalg.norm(p1 - p0)
            normal = np.array([-axis[1], axis[0]]) * 0.11
            centre.extend([_strip(p0 + normal, p1 + normal, 0.12), _strip(p0 - normal, p1 - normal, 0.12)])
        else:
            centre.append(_strip(p0, p1, LINE_WIDTH))
    for crossing in net.crossings:
        white.extend(_zebra(crossing))
    white.extend(stop['polygon'] for stop in net.stop_lines)
    return edges, white, centre


def build_paint_layers(net: RoadNetwork) -> List[PaintLayer]:
    """Paint layers of ``net`` in drawing order (later layers cover earlier ones)."""
    edges, white, centre = _lines(net)
    groups = [('carpark', [c['polygon'] for c in net.carparks]),
              ('sidewalk', [w['polygon'] for w in net.walkways]),
              ('asphalt', [x['polygon'] for x in net.intersections] + [p.polygon for p in net.pieces]),
              ('kerb', _rings(net)), ('edge_line', edges), ('paint_white', white), ('centre_line', centre)]
    layers = []
    for key, polys in groups:
        polys = [np.asarray(p, dtype=np.float64) for p in polys]
        bounds = np.array([[p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()] for p in polys])
        starts = np.cumsum([0] + [len(p) for p in polys])
        vertices = np.concatenate(polys, axis=0) if polys else np.zeros((0, 2))
        layers.append(PaintLayer(key, vertices, starts, bounds.reshape(-1, 4)))
    return layers


def mottle_table(seed: int) -> np.ndarray:
    """Smooth random field ``[MOTTLE_TABLE, MOTTLE_TABLE]`` float32 in about [-1, 1], one value per 2 m cell."""
    rng = np.random.default_rng([seed, 7])
    table = rng.standard_normal((MOTTLE_TABLE, MOTTLE_TABLE)).astype(np.float32)
    pad = 8   # blur a periodically padded copy so that the table tiles seamlessly
    table = cv2.GaussianBlur(np.pad(table, pad, mode='wrap'), (0, 0), 1.5)[pad:-pad, pad:-pad]
    return table / max(float(np.abs(table).max()), 1e-6)


def rasterise(layers: Sequence[PaintLayer], colours: Dict[str, Sequence[int]], background: Sequence[int],
              bounds: Tuple[float, float, float, float], resolution: float,
              mottle: Optional[Tuple[np.ndarray, float]] = None, antialias: bool = True) -> np.ndarray:
    """Draw the paint layers over a window of the global frame.

    Args:
        layers: paint layers from :func:`build_paint_layers`; a layer whose key is not in ``colours`` is skipped.
        colours: palette key -> colour (C values, uint8 range).
        background: colour of unpainted ground (C values).
        bounds: window (xmin, ymin, xmax, ymax) in global metres.
        resolution: metres per pixel.
        mottle: optional (table from :func:`mottle_table`, amplitude in grey levels); requires xmin and ymax on
            multiples of ``MOTTLE_CELL`` and ``MOTTLE_CELL / resolution`` integral, so windows agree where they overlap.
        antialias: blend polygon edges (True, for textures) or keep exact palette values (False, for masks).

    Returns:
        np.ndarray: uint8 ``[H, W, C]``; row 0 is ``ymax`` (north up), column 0 is ``xmin``.
    """
    x0, y0, x1, y1 = bounds
    width, height = int(round((x1 - x0) / resolution)), int(round((y1 - y0) / resolution))
    image = np.empty((height, width, len(background)), dtype=np.uint8)
    image[:] = np.asarray(background, dtype=np.uint8)
    scale = (1 << _SHIFT) / resolution
    for layer in layers:
        if layer.key not in colours or not len(layer.bounds):
            continue
        hit = np.nonzero((layer.bounds[:, 2] >= x0) & (layer.bounds[:, 0] <= x1) &
                         (layer.bounds[:, 3] >= y0) & (layer.bounds[:, 1] <= y1))[0]
        pix = np.round(np.stack([(layer.vertices[:, 0] - x0) * scale, (y1 - layer.vertices[:, 1]) * scale],
                                axis=1)).astype(np.int32)
        colour = tuple(int(c) for c in colours[layer.key])
        line_type = cv2.LINE_AA if antialias else cv2.LINE_8
        for k in hit:   # one polygon per call: cv2 fills overlapping polygons of one call even-odd
            cv2.fillPoly(image, [pix[layer.starts[k]:layer.starts[k + 1]]], colour, lineType=line_type,
                         shift=_SHIFT)
    if mottle is not None:
        image = _add_mottle(image, bounds, resolution, *mottle)
    return image


def _add_mottle(image: np.ndarray, bounds, resolution: float, table: np.ndarray, amplitude: float) -> np.ndarray:
    """Add the global low-frequency mottle (``amplitude`` grey levels) to an RGB window."""
    x0, _, _, y1 = bounds
    per_cell = int(round(MOTTLE_CELL / resolution))
    height, width = image.shape[:2]
    cols = (int(round(x0 / MOTTLE_CELL)) + np.arange(-(-width // per_cell))) % MOTTLE_TABLE
    rows = (-int(round(y1 / MOTTLE_CELL)) + np.arange(-(-height // per_cell))) % MOTTLE_TABLE
    cells = np.clip(table[np.ix_(rows, cols)] * amplitude + 128.0, 0, 255).astype(np.uint8)
    field = cv2.resize(cells, (cells.shape[1] * per_cell, cells.shape[0] * per_cell),
                       interpolation=cv2.INTER_LINEAR)[:height, :width]
    # saturate(image + field - 128) per channel, in one pass
    return cv2.addWeighted(image, 1.0, cv2.cvtColor(np.ascontiguousarray(field), cv2.COLOR_GRAY2RGB), 1.0, -128.0)


def city_palette(net: RoadNetwork, brightness: float = 1.0) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """(palette key -> RGB, background RGB) of the city, scaled by ``brightness``; float arrays in [0, 255]."""
    style = net.style
    keys = ('carpark', 'sidewalk', 'asphalt', 'kerb', 'edge_line', 'paint_white', 'centre_line')
    gain = brightness * style.brightness
    colours = {k: np.clip(np.asarray(getattr(style, k), dtype=np.float64) * gain, 0, 255) for k in keys}
    return colours, np.clip(np.asarray(style.offroad, dtype=np.float64) * gain, 0, 255)


def map_bitmaps(net: RoadNetwork, layers: Sequence[PaintLayer], resolution: float = 1.0
                ) -> Tuple[np.ndarray, np.ndarray]:
    """(basemap grey uint8 ``[H, W]``, semantic prior uint8 ``[H, W]`` with 255 on roads and sidewalks) covering the
    whole canvas ``[0, canvas_w] x [0, canvas_h]`` at ``resolution`` metres per pixel."""
    bounds = (0.0, 0.0, float(net.style.canvas_edge[0]), float(net.style.canvas_edge[1]))
    colours, background = city_palette(net)
    rgb = rasterise(layers, colours, background, bounds, resolution)
    basemap = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    prior = rasterise(layers, {'sidewalk': (255,), 'asphalt': (255,)}, (0,), bounds, resolution, antialias=False)
    return basemap, prior[..., 0]
