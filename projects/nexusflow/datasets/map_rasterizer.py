"""Map GT on the BEV canvas from the nuScenes map expansion (UniAD's things + stuff, rasterised in the LiDAR frame).

Follows UniAD's ``VectorizedLocalMap`` + ``preprocess_map`` (things) and ``obtain_map_info`` (drivable stuff), with
these changes:

- geometry is read once per location and process (:func:`load_location_geometry`, cached), and each frame only
  queries an STRtree, transforms the candidates to pixel coordinates and clips them (shapely 2, vectorised);
- the canvas is the BEV grid of ``projects/nexusflow/README.md`` in the **LiDAR** frame: mask ``[i, j]`` is the
  cell centred at ``x = x_min + (j + 0.5) * res_x``, ``y = y_min + (i + 0.5) * res_y``. This equals the devkit's
  ``NuScenesMap.get_map_mask(patch_box, patch_angle, layers, (H, W))`` with ``patch_angle`` = the heading of the
  LiDAR x axis in degrees and ``patch_box`` centred half a cell off the LiDAR origin (the devkit puts pixel
  centres on integer multiples of the resolution), with **no flip or rotation** (UniAD instead takes the ego
  heading as patch angle and then flips / rotates the masks into its canvas convention);
- boundaries are the rings of the union of all road_segment + lane polygons of the city (computed once), so
  clipping to the patch never creates artificial edges along the patch border (UniAD shrinks the patch instead);
- ped crossings are drawn as their full polygon outline (one instance per crossing; HDMapNet / UniAD draw the two
  longest edges as two instances); dividers and boundaries give one instance per connected clipped part;
- every instance is drawn into its own mask (UniAD draws all instances of a class into one index raster, so later
  instances overwrite overlapping pixels); lines are drawn with sub-pixel vertex precision (UniAD truncates the
  vertices to whole pixels), polygons with vertices rounded to whole pixels exactly as the devkit.

Only the planar (x, y, yaw) part of the LiDAR pose is used; pitch, roll and height are ignored as in the devkit.
"""
import functools
import os.path as osp
from typing import Dict, List, NamedTuple, Sequence, Tuple

import cv2
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.geometry.polygon import orient
from shapely.strtree import STRtree

from mmdet3d.registry import TASK_UTILS

THING_CLASSES = ('divider', 'ped_crossing', 'boundary')
STUFF_CLASSES = ('drivable',)
MAP_CLASSES = THING_CLASSES + STUFF_CLASSES
SUBPIXEL_BITS = 4  # cv2 drawing precision: 1/16 pixel


class LayerGeometry(NamedTuple):
    """Global-frame geometries of one map class with an STRtree over them."""
    geoms: np.ndarray  # object [G] of shapely geometries
    tree: STRtree


class LocationGeometry(NamedTuple):
    """All map classes of one location: dividers, crossing outlines, boundary rings (lines) and drivable polygons."""
    divider: LayerGeometry
    ped_crossing: LayerGeometry
    boundary: LayerGeometry
    drivable: LayerGeometry


def expansion_path(map_root: str, location: str) -> str:
    """Path of the map expansion JSON of ``location`` under the data root ``map_root``."""
    return osp.join(map_root, 'maps', 'expansion', f'{location}.json')


@functools.lru_cache(maxsize=None)
def load_location_geometry(map_root: str, location: str) -> LocationGeometry:
    """Read the map expansion of ``location`` once per process and build the four class geometries.

    Raises:
        FileNotFoundError: the expansion JSON is missing.
    """
    path = expansion_path(map_root, location)
    if not osp.isfile(path):
        raise FileNotFoundError(f'map expansion for location {location!r} not found at {path}; download the nuScenes '
                                f'map expansion (v1.3) into <data_root>/maps/expansion/, or regenerate the synthetic '
                                f'set with tools/create_data.py synthetic')
    from nuscenes.map_expansion.map_api import NuScenesMap
    nusc_map = NuScenesMap(dataroot=map_root, map_name=location)
    dividers = [nusc_map.extract_line(rec['line_token']) for layer in ('road_divider', 'lane_divider')
                for rec in getattr(nusc_map, layer)]
    crossings = _valid_polygons(nusc_map, 'ped_crossing')
    roads = shapely.unary_union(_valid_polygons(nusc_map, 'road_segment') + _valid_polygons(nusc_map, 'lane'))
    drivable = [nusc_map.extract_polygon(token) for rec in nusc_map.drivable_area for token in rec['polygon_tokens']]
    return LocationGeometry(
        divider=_layer([line for line in dividers if len(line.coords) >= 2]),
        ped_crossing=_layer([LineString(poly.exterior.coords) for poly in crossings]),
        boundary=_layer(_polygon_rings(roads)),
        drivable=_layer([poly for poly in drivable if not poly.is_empty]))


def _valid_polygons(nusc_map, layer: str) -> List[Polygon]:
    """Valid polygons of a polygon layer (the devkit's ``get_map_mask`` skips invalid ones too)."""
    polygons = (nusc_map.extract_polygon(rec['polygon_token']) for rec in getattr(nusc_map, layer))
    return [poly for poly in polygons if poly.is_valid and not poly.is_empty]


def _polygon_rings(geometry) -> List[LineString]:
    """Exterior and interior rings of every polygon part of ``geometry`` as LineStrings, the polygon on their right
    (exteriors clockwise, holes counter-clockwise, as UniAD orients its boundaries)."""
    rings = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon) and not part.is_empty:
            part = orient(part, sign=-1.0)
            rings.append(LineString(part.exterior.coords))
            rings.extend(LineString(hole.coords) for hole in part.interiors)
    return rings


def _layer(geoms: Sequence) -> LayerGeometry:
    array = np.empty(len(geoms), dtype=object)
    array[:] = list(geoms)
    return LayerGeometry(array, STRtree(array))


@TASK_UTILS.register_module('NexusFlowMapRasterizer')
class MapRasterizer:
    """Rasterises UniAD's map GT (3 thing classes + drivable stuff) on the LiDAR-frame BEV canvas.

    Args:
        pc_range (Sequence[float]): ``[x_min, y_min, z_min, x_max, y_max, z_max]`` in the LiDAR frame, metres; only
            the x / y extent is used.
        canvas_size (Tuple[int, int]): ``(H, W)`` = rows (along y) and columns (along x).
        line_thickness (int): thickness in pixels of divider, crossing and boundary lines (UniAD: 2 at 200x200,
            1 at 50x50).
    """

    def __init__(self, pc_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
                 canvas_size: Tuple[int, int] = (200, 200), line_thickness: int = 2):
        if len(pc_range) != 6 or pc_range[3] <= pc_range[0] or pc_range[4] <= pc_range[1]:
            raise ValueError(f'pc_range must be [x_min, y_min, z_min, x_max, y_max, z_max] with max > min, '
                             f'got {list(pc_range)}')
        if len(canvas_size) != 2 or min(canvas_size) < 1:
            raise ValueError(f'canvas_size must be (H, W) with positive sizes, got {canvas_size}')
        if line_thickness < 1:
            raise ValueError(f'line_thickness must be >= 1 pixel, got {line_thickness}')
        self.x_min, self.y_min, _, self.x_max, self.y_max, _ = map(float, pc_range)
        self.canvas_size = (int(canvas_size[0]), int(canvas_size[1]))
        self.line_thickness = int(line_thickness)
        self.res_x = (self.x_max - self.x_min) / self.canvas_size[1]
        self.res_y = (self.y_max - self.y_min) / self.canvas_size[0]

    def __call__(self, map_root: str, location: str, lidar2global: np.ndarray) -> Dict[str, np.ndarray]:
        """Map GT of one frame.

        Args:
            map_root (str): data root holding ``maps/expansion/<location>.json``.
            location (str): nuScenes map name, e.g. ``'boston-seaport'``.
            lidar2global (np.ndarray): float [4, 4] LiDAR -> global transform (metres).

        Returns:
            dict: ``labels`` int64 [K] (0 divider, 1 ped_crossing, 2 boundary, 3 drivable), ``bboxes`` float32
            [K, 4] pixel ``[x1, y1, x2, y2]`` (x = column, y = row; pixel j spans [j, j + 1), so
            ``x2 = last column + 1``; all zeros for an empty drivable mask), ``masks`` uint8 [K, H, W] in {0, 1}.
            Thing instances come first (divider, ped_crossing, boundary, each in map-file order), then exactly
            one drivable entry (possibly all zero).
        """
        geometry = load_location_geometry(map_root, location)
        affine = self.global_to_pixel(lidar2global)
        patch = self._global_patch(lidar2global)
        masks, labels = [], []
        for label, name in enumerate(THING_CLASSES):
            layer = getattr(geometry, name)
            for mask in self._line_masks(layer, patch, affine, merge_parts=(name == 'ped_crossing')):
                masks.append(mask)
                labels.append(label)
        masks.append(self._polygon_mask(geometry.drivable, patch, affine))
        labels.append(MAP_CLASSES.index('drivable'))
        masks = np.stack(masks).astype(np.uint8)
        return dict(labels=np.asarray(labels, dtype=np.int64), bboxes=self.mask_boxes(masks), masks=masks)

    def empty(self) -> Dict[str, np.ndarray]:
        """GT of a frame without map labels: ``K = 0`` (shapes as in :meth:`__call__`)."""
        return dict(labels=np.zeros(0, dtype=np.int64), bboxes=np.zeros((0, 4), dtype=np.float32),
                    masks=np.zeros((0,) + self.canvas_size, dtype=np.uint8))

    def global_to_pixel(self, lidar2global: np.ndarray) -> List[float]:
        """Shapely affine ``[a, b, d, e, xoff, yoff]`` mapping global (X, Y) to canvas (column, row) coordinates.

        Pixel centres lie on integers: column ``u = (x - x_min) / res_x - 0.5`` with ``x`` the LiDAR-frame
        coordinate; the LiDAR heading is ``atan2(R[1, 0], R[0, 0])`` of ``lidar2global``.
        """
        cos, sin, tx, ty = self._planar_pose(lidar2global)
        return [cos / self.res_x, sin / self.res_x, -sin / self.res_y, cos / self.res_y,
                (-cos * tx - sin * ty - self.x_min) / self.res_x - 0.5,
                (sin * tx - cos * ty - self.y_min) / self.res_y - 0.5]

    def _global_patch(self, lidar2global: np.ndarray) -> Polygon:
        """The BEV range ``[x_min, x_max] x [y_min, y_max]`` of the LiDAR frame as a global-frame polygon."""
        corners = np.array([[self.x_min, self.y_min], [self.x_max, self.y_min], [self.x_max, self.y_max],
                            [self.x_min, self.y_max]])
        cos, sin, tx, ty = self._planar_pose(lidar2global)
        return Polygon(corners @ np.array([[cos, sin], [-sin, cos]]) + np.array([tx, ty]))

    @staticmethod
    def _planar_pose(lidar2global: np.ndarray) -> Tuple[float, float, float, float]:
        """``(cos yaw, sin yaw, x, y)`` of the LiDAR heading and position in the global frame."""
        lidar2global = np.asarray(lidar2global, dtype=np.float64)
        yaw = np.arctan2(lidar2global[1, 0], lidar2global[0, 0])
        return float(np.cos(yaw)), float(np.sin(yaw)), float(lidar2global[0, 3]), float(lidar2global[1, 3])

    def _candidates(self, layer: LayerGeometry, patch: Polygon, affine: Sequence[float],
                    rect: Tuple[float, float, float, float]) -> np.ndarray:
        """Geometries of ``layer`` touching the patch, in pixel coordinates, clipped to the pixel ``rect``."""
        index = np.sort(layer.tree.query(patch, predicate='intersects'))
        if len(index) == 0:
            return layer.geoms[:0]
        matrix = np.array([[affine[0], affine[1]], [affine[2], affine[3]]])
        offset = np.array(affine[4:6])
        moved = shapely.transform(layer.geoms[index], lambda xy: xy @ matrix.T + offset)
        clipped = shapely.clip_by_rect(moved, *rect)
        return clipped[~shapely.is_empty(clipped)]

    def _line_masks(self, layer: LayerGeometry, patch: Polygon, affine: Sequence[float],
                    merge_parts: bool) -> List[np.ndarray]:
        """One mask per clipped line part (or per source line when ``merge_parts``); empty masks dropped."""
        masks = []
        height, width = self.canvas_size
        for geom in self._candidates(layer, patch, affine, (-0.5, -0.5, width - 0.5, height - 0.5)):
            parts = [p for p in shapely.get_parts(geom) if isinstance(p, LineString) and len(p.coords) >= 2]
            groups = [parts] if merge_parts else [[part] for part in parts]
            for group in groups:
                mask = np.zeros(self.canvas_size, dtype=np.uint8)
                cv2.polylines(mask, [self._cv_points(part.coords) for part in group], isClosed=False, color=1,
                              thickness=self.line_thickness, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
                if mask.any():
                    masks.append(mask)
        return masks

    def _polygon_mask(self, layer: LayerGeometry, patch: Polygon, affine: Sequence[float]) -> np.ndarray:
        """The layer's polygons filled one after the other in map-file order (each clears its own holes).

        Polygons are clipped to ``[0, W] x [0, H]`` (the devkit's patch edges in these pixel coordinates), their
        vertices rounded to whole pixels and filled with cv2 (edge pixels included), exactly as the devkit's
        ``get_map_mask`` does, so the drivable GT matches the mask UniAD / HDMapNet train and evaluate on.
        """
        height, width = self.canvas_size
        mask = np.zeros(self.canvas_size, dtype=np.uint8)
        for geom in self._candidates(layer, patch, affine, (0.0, 0.0, float(width), float(height))):
            for part in shapely.get_parts(geom):
                if not isinstance(part, Polygon) or part.is_empty:
                    continue
                cv2.fillPoly(mask, [self._cv_points(part.exterior.coords, 0)], 1, cv2.LINE_8)
                holes = [self._cv_points(ring.coords, 0) for ring in part.interiors]
                if holes:
                    cv2.fillPoly(mask, holes, 0, cv2.LINE_8)
        return mask

    @staticmethod
    def _cv_points(coords, subpixel_bits: int = SUBPIXEL_BITS) -> np.ndarray:
        """Pixel coordinates as cv2 fixed-point int32 [P, 1, 2] with ``subpixel_bits`` fractional bits."""
        scaled = np.asarray(coords)[:, :2] * (1 << subpixel_bits)
        return np.round(scaled).astype(np.int32).reshape(-1, 1, 2)

    @staticmethod
    def mask_boxes(masks: np.ndarray) -> np.ndarray:
        """Pixel boxes ``[x1, y1, x2 + 1, y2 + 1]`` (float32 [K, 4]) of uint8 masks [K, H, W]; zeros if empty."""
        boxes = np.zeros((len(masks), 4), dtype=np.float32)
        for k, mask in enumerate(masks):
            cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
            if len(cols):
                boxes[k] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        return boxes
