"""Map GT drawn with UniAD's protocol (``protocol='uniad'`` of ``LoadMapAnnotations``), on this project's canvas.

UniAD draws its map things (``VectorizedLocalMap`` + ``preprocess_map``, then ``np.rot90(k=-1)``) differently from
:class:`MapRasterizer` (the default ``'lidar'`` protocol, see its module docstring). This rasteriser reproduces those
differences so that a UniAD checkpoint can be evaluated against the GT it was trained on:

- **centre and orientation**: the patch is centred on the **ego** origin and turned with the **ego** heading
  (UniAD's ``ego2global`` patch box and angle), not on the LiDAR. Drawn in the local frame (x forward, y left)
  into an array whose rows follow local y and columns local x, then rotated a quarter turn clockwise
  (``rot90(k=-1)``), so that rows run forward and columns to the right, as the canvas of the plugin README;
- **crossings**: the two longest edges of each crossing polygon (``argsort`` of the squared edge lengths, the
  second longest first), each clipped part an instance, instead of the full outline;
- **one index raster per class**: every part is resampled every ``sample_dist`` metres from its start
  (end point dropped, parts with fewer than 2 samples dropped), its vertices truncated to whole pixels, and drawn
  with a running index (1, 2, ... over all classes, saturating at 255 in the uint8 raster) into one raster per
  class, later instances overwriting earlier ones; then each class is cleared where a later class lies within
  its line drawn ``thickness + 4`` wide (UniAD's ``overlap_filter``); the instances are the remaining index values;
- **boundaries**: the rings of the road_segment + lane union, exteriors clockwise and holes counter-clockwise,
  clipped to the patch shrunk by 0.2 m on each side, touching pieces merged (``linemerge``).

The drivable stuff mask is the default one: UniAD draws it with the devkit's ``get_map_mask`` on the LiDAR-centred
patch at the LiDAR heading, and its transpose + ``flip(axis=1)`` + ``rot90(k=-1)`` composes to the identity on this
canvas. Known residual difference: the boundary union is computed per city, not per patch, so a ring lying wholly
inside the patch may start at another vertex than UniAD's and be resampled at shifted points.
"""
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import shapely
from shapely.geometry import LineString

from mmdet3d.registry import TASK_UTILS
from .map_rasterizer import MAP_CLASSES, THING_CLASSES, LayerGeometry, MapRasterizer, load_location_geometry

__all__ = ['UniADMapRasterizer']

BOUNDARY_SHRINK = 0.2  # metres, UniAD's local_patch margin for the road boundaries
FILTER_EXTRA_THICKNESS = 4  # pixels added to the line width for UniAD's overlap filter


@TASK_UTILS.register_module()
class UniADMapRasterizer(MapRasterizer):
    """UniAD's map GT on the BEV canvas: ego-centred things in index rasters, crossings as two edges.

    Args:
        pc_range, canvas_size, line_thickness: as :class:`MapRasterizer`; the patch spans the same extents around
            the ego origin (UniAD: ``patch_size = (102.4, 102.4)``, ``thickness`` 2 at 200x200 and 1 at 50x50).
        sample_dist (float): resampling step of the thing lines in metres (UniAD: 1).
    """

    def __init__(self, pc_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
                 canvas_size: Tuple[int, int] = (200, 200), line_thickness: int = 2, sample_dist: float = 1.0):
        super().__init__(pc_range=pc_range, canvas_size=canvas_size, line_thickness=line_thickness)
        if sample_dist <= 0:
            raise ValueError(f'sample_dist must be positive (metres), got {sample_dist}')
        self.sample_dist = float(sample_dist)

    def __call__(self, map_root: str, location: str, lidar2global: np.ndarray,
                 ego2global: np.ndarray) -> Dict[str, np.ndarray]:
        """Map GT of one frame (output as :meth:`MapRasterizer.__call__`).

        Args:
            map_root (str): data root holding ``maps/expansion/<location>.json``.
            location (str): nuScenes map name.
            lidar2global (np.ndarray): float [4, 4], the pose of the drivable patch.
            ego2global (np.ndarray): float [4, 4], the pose of the thing patch.

        Returns:
            dict: ``labels`` int64 [K], ``bboxes`` float32 [K, 4], ``masks`` uint8 [K, H, W]: the thing instances
            of each class in increasing index order (divider, ped_crossing, boundary), then one drivable entry.
        """
        geometry = load_location_geometry(map_root, location)
        rasters = self.index_rasters(geometry, ego2global)
        masks, labels = [], []
        for label, raster in enumerate(rasters):
            for index in np.unique(raster):
                if index:
                    masks.append((raster == index).astype(np.uint8))
                    labels.append(label)
        masks.append(self._polygon_mask(geometry.drivable, self._global_patch(lidar2global),
                                        self.global_to_pixel(lidar2global)))
        labels.append(MAP_CLASSES.index('drivable'))
        masks = np.stack(masks)
        return dict(labels=np.asarray(labels, dtype=np.int64), bboxes=self.mask_boxes(masks), masks=masks)

    def index_rasters(self, geometry, ego2global: np.ndarray) -> np.ndarray:
        """UniAD's per-class index rasters on the canvas, overlap filter applied: uint8 ``[3, H, W]``."""
        local_rect = (self.y_min, -self.x_max, self.y_max, -self.x_min)  # (x, y) min / max in the local frame
        parts = self._local_parts(geometry, ego2global, local_rect)
        height, width = self.canvas_size
        rasters = np.zeros((len(THING_CLASSES), width, height), dtype=np.uint8)  # rows: local y, cols: local x
        filters = np.zeros_like(rasters)
        index = 1
        for cls, lines in enumerate(parts):
            for line in lines:
                pixels = self._pixel_vertices(line, local_rect)
                cv2.polylines(rasters[cls], [pixels], False, color=index, thickness=self.line_thickness)
                cv2.polylines(filters[cls], [pixels], False, color=1,
                              thickness=self.line_thickness + FILTER_EXTRA_THICKNESS)
                index += 1
        for cls in range(len(THING_CLASSES) - 1, 0, -1):
            rasters[:cls, filters[cls] != 0] = 0
        return np.ascontiguousarray(np.rot90(rasters, k=-1, axes=(1, 2)))

    def _local_parts(self, geometry, ego2global: np.ndarray,
                     local_rect: Tuple[float, float, float, float]) -> List[List[LineString]]:
        """Resampled thing lines of each class in the ego-heading local frame (x forward, y left), metres."""
        cos, sin, tx, ty = self._planar_pose(ego2global)
        to_local = np.array([[cos, sin], [-sin, cos]])
        offset = -to_local @ np.array([tx, ty])
        x0, y0, x1, y1 = local_rect
        patch = shapely.Polygon(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) @ to_local + [tx, ty])

        def local(layer: LayerGeometry) -> np.ndarray:
            index = np.sort(layer.tree.query(patch, predicate='intersects'))
            return shapely.transform(layer.geoms[index], lambda xy: xy @ to_local.T + offset)

        dividers = [part for line in local(geometry.divider) for part in _line_parts(shapely.clip_by_rect(line,
                                                                                                          *local_rect))]
        crossings = [part for outline in local(geometry.ped_crossing) for edge in _two_longest_edges(outline)
                     for part in _line_parts(shapely.clip_by_rect(edge, *local_rect))]
        inner = (x0 + BOUNDARY_SHRINK, y0 + BOUNDARY_SHRINK, x1 - BOUNDARY_SHRINK, y1 - BOUNDARY_SHRINK)
        boundaries = [part for ring in local(geometry.boundary)  # already oriented as UniAD's (road on the right)
                      for part in _line_parts(shapely.line_merge(shapely.clip_by_rect(ring, *inner)))]
        return [[line for line in map(self._resample, lines) if line is not None]
                for lines in (dividers, crossings, boundaries)]

    def _resample(self, line: LineString):
        """Points every ``sample_dist`` metres from the start (end excluded); None with fewer than two."""
        points = shapely.line_interpolate_point(line, np.arange(0.0, line.length, self.sample_dist))
        return LineString(shapely.get_coordinates(points)) if len(points) >= 2 else None

    def _pixel_vertices(self, line: LineString, local_rect: Tuple[float, float, float, float]) -> np.ndarray:
        """Local (x, y) metres -> UniAD's truncated pixel vertices (column = local x, row = local y) int32 [P, 2]."""
        coords = shapely.get_coordinates(line)
        pixels = np.stack([(coords[:, 0] - local_rect[0]) / self.res_y, (coords[:, 1] - local_rect[1]) / self.res_x],
                          axis=1)
        return pixels.astype(np.int32)


def _line_parts(geom) -> List[LineString]:
    """The non-empty LineString parts of a clipped geometry."""
    return [part for part in shapely.get_parts(geom) if isinstance(part, LineString) and not part.is_empty]


def _two_longest_edges(outline: LineString) -> List[LineString]:
    """UniAD's crossing lines: edges ``argsort(squared lengths)[-2:]`` of the outline, in that order."""
    coords = shapely.get_coordinates(outline)
    lengths = np.square(coords[1:] - coords[:-1]).sum(1)
    return [LineString(coords[k:k + 2]) for k in np.argsort(lengths)[-2:]]
