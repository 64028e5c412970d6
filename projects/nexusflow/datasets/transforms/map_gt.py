"""Map GT of one frame, rasterised from the nuScenes map expansion on the LiDAR-frame BEV canvas."""
from typing import Optional, Sequence, Tuple

from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from ...core.frames import lidar2global_of, pose_of
from ..map_rasterizer import MapRasterizer
from ..uniad_map_rasterizer import UniADMapRasterizer

MAP_GT_PROTOCOLS = ('lidar', 'uniad')


@TRANSFORMS.register_module('NexusFlowLoadMapAnnotations')
class LoadMapAnnotations(BaseTransform):
    """Rasterise divider / ped_crossing / boundary instances and the drivable-area mask.

    Required keys: ``location``, ``lidar2ego`` and ``ego2global`` (4x4), ``data_root`` (unless ``map_root`` is
    given), ``has_map_gt`` (optional, default True; False -> zero entries).

    Added keys: ``gt_map_labels`` (int64 [K]: 0 divider, 1 ped_crossing, 2 boundary, 3 drivable),
    ``gt_map_bboxes`` (float32 [K, 4] pixel ``x1 y1 x2 y2``, x = column, exclusive max), ``gt_map_masks``
    (uint8 [K, H, W] in {0, 1}; row i <-> LiDAR y, column j <-> LiDAR x, cell centres as the BEV grid),
    ``map_gt_protocol`` (str, the ``protocol``; packed into the metainfo, reported by ``MapIoUMetric``).

    Args:
        pc_range (Sequence[float]): BEV range ``[x_min, y_min, z_min, x_max, y_max, z_max]`` (m, LiDAR frame).
        canvas_size (Tuple[int, int]): ``(H, W)`` of the masks.
        line_thickness (int): line width in pixels for the thing classes.
        map_root (str, optional): folder holding ``maps/expansion/``; default: the dataset's data root.
        protocol (str): ``'lidar'`` (default, ``map_rasterizer``: LiDAR-centred things, crossings as outlines, one
            mask per instance) or ``'uniad'`` (``uniad_map_rasterizer``: UniAD's ego-centred patch, crossings as
            their two longest edges, one index raster per class; for evaluating UniAD checkpoints). The drivable
            mask is the same in both.
    """

    def __init__(self, pc_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
                 canvas_size: Tuple[int, int] = (200, 200), line_thickness: int = 2, map_root: Optional[str] = None,
                 protocol: str = 'lidar'):
        if protocol not in MAP_GT_PROTOCOLS:
            raise ValueError(f'LoadMapAnnotations: protocol must be one of {MAP_GT_PROTOCOLS}, got {protocol!r}')
        rasterizer = UniADMapRasterizer if protocol == 'uniad' else MapRasterizer
        self.rasterizer = rasterizer(pc_range=pc_range, canvas_size=canvas_size, line_thickness=line_thickness)
        self.map_root = map_root
        self.protocol = protocol

    def transform(self, results: dict) -> dict:
        if results.get('has_map_gt', True):
            map_root = self.map_root if self.map_root is not None else results['data_root']
            if self.protocol == 'uniad':
                gt = self.rasterizer(map_root, results['location'], lidar2global_of(results),
                                     pose_of(results, 'ego2global'))
            else:
                gt = self.rasterizer(map_root, results['location'], lidar2global_of(results))
        else:
            gt = self.rasterizer.empty()
        results.update(gt_map_labels=gt['labels'], gt_map_bboxes=gt['bboxes'], gt_map_masks=gt['masks'],
                       map_gt_protocol=self.protocol)
        return results

    def __repr__(self) -> str:
        r = self.rasterizer
        return (f'{self.__class__.__name__}(canvas_size={r.canvas_size}, line_thickness={r.line_thickness}, '
                f'range=[{r.x_min}, {r.y_min}, {r.x_max}, {r.y_max}], protocol={self.protocol!r})')
