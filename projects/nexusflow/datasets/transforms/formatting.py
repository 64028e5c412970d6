"""Pack one processed frame into ``{'inputs': {'img'}, 'data_samples': Det3DDataSample}`` (README contract).

Why not mmdet3d's ``Pack3DDetInputs``: it packs only its fixed key lists (``gt_bboxes_3d``, ``gt_labels_3d``, ...)
and raises ``NotImplementedError`` for any other key, so the track ids (``gt_instance_ids``) and the map GT
(``gt_map_labels`` / ``gt_map_bboxes`` / ``gt_map_masks`` as ``gt_map_instances``) would need a subclass that
rewrites its ``pack_single_results`` anyway; the sample type (``Det3DDataSample``) and the instance containers
(``InstanceData``) are mmdet3d's / mmengine's.
"""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData

from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from .track_gt import empty_track_gt

DEFAULT_META_KEYS = ('sample_idx', 'token', 'scene_token', 'scene_name', 'location', 'timestamp', 'frame_idx',
                     'ego2global', 'lidar2ego', 'can_bus', 'lidar2img', 'cam2img', 'lidar2cam', 'img_shape',
                     'ori_shape', 'img_path', 'num_views', 'has_track_gt', 'has_map_gt')
# metainfo keys stored as float64 numpy arrays (the info pkl stores nested lists)
ARRAY_META_KEYS = ('ego2global', 'lidar2ego', 'can_bus', 'lidar2img', 'cam2img', 'lidar2cam')


@TRANSFORMS.register_module('NexusFlowPackTrackMapInputs')
class PackTrackMapInputs(BaseTransform):
    """Pack images, track GT, map GT and metainfo of one frame.

    Required keys: ``img`` (list of N uint8 [H, W, 3]) and every key of ``meta_keys`` except ``has_track_gt`` /
    ``has_map_gt`` (default True). Optional: ``gt_bboxes_3d``, ``gt_labels_3d``, ``gt_instance_ids`` (empty if
    absent), ``gt_map_labels``, ``gt_map_bboxes``, ``gt_map_masks`` (``gt_map_instances`` absent if missing),
    ``map_gt_protocol`` (copied into the metainfo when present).

    Returns:
        dict: ``inputs['img']``: uint8 Tensor [N, 3, H, W] (channel order as loaded, BGR);
        ``data_samples``: :class:`Det3DDataSample` with ``gt_instances_3d`` (``bboxes_3d``
        LiDARInstance3DBoxes box_dim=9 bottom centre, ``labels_3d`` long [M], ``instance_ids`` long [M]),
        ``gt_map_instances`` (``labels`` long [K], ``bboxes`` float [K, 4] pixels, ``masks`` uint8 [K, H, W]) and
        metainfo (matrices as float64 numpy arrays, ``box_type_3d`` = LiDARInstance3DBoxes).

    Args:
        meta_keys (Sequence[str]): result keys copied into the metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        views = results['img']
        imgs = np.empty((len(views), views[0].shape[2]) + views[0].shape[:2], dtype=np.uint8)  # [N, 3, H, W]
        for k, view in enumerate(views):
            imgs[k] = view.transpose(2, 0, 1)
        img = torch.from_numpy(imgs)
        sample = Det3DDataSample()
        sample.gt_instances_3d = self._track_instances(results)
        if 'gt_map_labels' in results:
            sample.gt_map_instances = InstanceData(
                labels=torch.as_tensor(results['gt_map_labels'], dtype=torch.long),
                bboxes=torch.as_tensor(results['gt_map_bboxes'], dtype=torch.float32),
                masks=torch.as_tensor(results['gt_map_masks'], dtype=torch.uint8))
        sample.set_metainfo(self._metainfo(results))
        if 'map_gt_protocol' in results:
            sample.set_metainfo(dict(map_gt_protocol=results['map_gt_protocol']))
        return dict(inputs=dict(img=img), data_samples=sample)

    @staticmethod
    def _track_instances(results: dict) -> InstanceData:
        gt = results if 'gt_bboxes_3d' in results else empty_track_gt()
        return InstanceData(bboxes_3d=gt['gt_bboxes_3d'],
                            labels_3d=torch.as_tensor(gt['gt_labels_3d'], dtype=torch.long),
                            instance_ids=torch.as_tensor(gt['gt_instance_ids'], dtype=torch.long))

    def _metainfo(self, results: dict) -> dict:
        meta = dict(has_track_gt=True, has_map_gt=True)
        missing = [key for key in self.meta_keys if key not in results and key not in meta]
        if missing:
            raise KeyError(f'{self.__class__.__name__}: results lack the meta keys {missing}; '
                           f'available: {sorted(results)}')
        for key in self.meta_keys:
            if key in results:
                value = results[key]
                meta[key] = np.asarray(value, dtype=np.float64) if key in ARRAY_META_KEYS else value
        meta['has_track_gt'], meta['has_map_gt'] = bool(meta['has_track_gt']), bool(meta['has_map_gt'])
        meta['box_type_3d'] = LiDARInstance3DBoxes
        return meta

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
