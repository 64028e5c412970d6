"""Track GT of one frame: LiDAR boxes with velocities, class labels and integer track ids, filtered together."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures import LiDARInstance3DBoxes

TRACK_GT_KEYS = ('gt_bboxes_3d', 'gt_labels_3d', 'gt_instance_ids')


def empty_track_gt() -> dict:
    """Track GT with zero boxes (same types as :class:`LoadTrackAnnotations3D` outputs)."""
    return dict(gt_bboxes_3d=LiDARInstance3DBoxes(np.zeros((0, 9), dtype=np.float32), box_dim=9),
                gt_labels_3d=np.zeros(0, dtype=np.int64), gt_instance_ids=np.zeros(0, dtype=np.int64))


@TRANSFORMS.register_module('NexusFlowLoadTrackAnnotations3D')
class LoadTrackAnnotations3D(BaseTransform):
    """Build track GT from the info's ``instances``.

    Drops instances whose ``bbox_label_3d`` is -1 (not one of the dataset classes) and, with ``filter_invalid``,
    those with ``bbox_3d_isvalid == False`` (no LiDAR or radar point, as UniAD's ``use_valid_flag``). A frame with
    ``has_track_gt == False`` (geo-split) gets zero boxes.

    Required keys: ``instances`` (list of dicts with ``bbox_3d`` gravity-centre ``[x, y, z, l, w, h, yaw]``,
    ``velocity`` ``[vx, vy]``, ``bbox_label_3d``, ``instance_id``, ``bbox_3d_isvalid``), ``has_track_gt``
    (optional, default True).

    Added keys: ``gt_bboxes_3d`` (:class:`LiDARInstance3DBoxes`, ``box_dim=9``: bottom centre ``x, y, z`` (m,
    LiDAR frame), ``l, w, h`` (m), ``yaw`` (rad, counter-clockwise from +x), ``vx, vy`` (m/s, LiDAR frame)),
    ``gt_labels_3d`` (int64 [M], class index), ``gt_instance_ids`` (int64 [M], track id unique over the dataset).

    Args:
        filter_invalid (bool): drop instances without LiDAR / radar points.
    """

    def __init__(self, filter_invalid: bool = True):
        self.filter_invalid = filter_invalid

    def transform(self, results: dict) -> dict:
        if not results.get('has_track_gt', True):
            results.update(empty_track_gt())
            return results
        keep = [inst for inst in results['instances']
                if inst['bbox_label_3d'] >= 0 and (inst['bbox_3d_isvalid'] or not self.filter_invalid)]
        if not keep:
            results.update(empty_track_gt())
            return results
        boxes = np.array([list(inst['bbox_3d']) + list(inst['velocity']) for inst in keep], dtype=np.float32)
        results.update(
            gt_bboxes_3d=LiDARInstance3DBoxes(boxes, box_dim=9, origin=(0.5, 0.5, 0.5)),
            gt_labels_3d=np.array([inst['bbox_label_3d'] for inst in keep], dtype=np.int64),
            gt_instance_ids=np.array([inst['instance_id'] for inst in keep], dtype=np.int64))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(filter_invalid={self.filter_invalid})'


@TRANSFORMS.register_module('NexusFlowTrackObjectRangeFilter')
class TrackObjectRangeFilter(BaseTransform):
    """Keep boxes whose BEV centre lies in the point-cloud range; labels and track ids stay aligned.

    mmdet3d's ``ObjectRangeFilter`` filters ``gt_bboxes_3d`` and ``gt_labels_3d`` only (the track ids would no longer
    line up with their boxes) and re-wraps every yaw (``limit_yaw``); the range test is the same ``in_range_bev``.

    Required / modified keys: ``gt_bboxes_3d``, ``gt_labels_3d``, ``gt_instance_ids``.

    Args:
        point_cloud_range (Sequence[float]): ``[x_min, y_min, z_min, x_max, y_max, z_max]`` (m, LiDAR frame); a
            box is kept if ``x_min < x < x_max`` and ``y_min < y < y_max`` (mmdet3d ``in_range_bev``).
    """

    def __init__(self, point_cloud_range: Sequence[float]):
        if len(point_cloud_range) != 6:
            raise ValueError(f'point_cloud_range needs 6 values [x_min, y_min, z_min, x_max, y_max, z_max], '
                             f'got {list(point_cloud_range)}')
        self.bev_range = [point_cloud_range[0], point_cloud_range[1], point_cloud_range[3], point_cloud_range[4]]

    def transform(self, results: dict) -> dict:
        keep = results['gt_bboxes_3d'].in_range_bev(self.bev_range).numpy().astype(bool)
        results['gt_bboxes_3d'] = results['gt_bboxes_3d'][keep]
        results['gt_labels_3d'] = results['gt_labels_3d'][keep]
        results['gt_instance_ids'] = results['gt_instance_ids'][keep]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(bev_range={self.bev_range})'
