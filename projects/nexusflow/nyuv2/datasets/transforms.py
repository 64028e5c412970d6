"""NYUv2 transforms: load the four arrays (masking unlabelled tasks), MTPSL's random scale-crop, packing.

Result keys between the transforms: ``img`` float32 ``[H, W, 3]`` RGB in ``[0, 1]``; ``gt_seg`` int64 ``[H, W]`` in
``[-1, 13)``; ``gt_depth`` float32 ``[H, W]`` metres (0 = invalid); ``gt_normal`` float32 ``[H, W, 3]`` camera-frame
unit normals (all-zero = invalid); ``has_seg`` / ``has_depth`` / ``has_normal`` bool; ``img_shape`` ``(H, W)``.
"""
from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.structures import BaseDataElement, PixelData

from mmdet3d.registry import TRANSFORMS
from ..meta import IGNORE_INDEX, NUM_CLASSES, TASK_FLAGS
from .arrays import check_array

META_KEYS = ('sample_idx', 'img_path', 'img_shape', 'ori_shape', 'crop_scale', 'crop_box', 'has_seg', 'has_depth',
             'has_normal')


def _load(path: str, folder: str, image_hw: Tuple[int, int]) -> np.ndarray:
    """``np.load`` with the layout check of ``folder``."""
    array = np.load(path)
    check_array(array, path, folder, image_hw)
    return array


@TRANSFORMS.register_module('NexusFlowLoadNYUv2Sample')
class LoadNYUv2Sample(BaseTransform):
    """Read ``img_path`` (and the GT files of the labelled tasks); unlabelled tasks get ignore-valued GT.

    Required keys: ``img_path``, ``label_path``, ``depth_path``, ``normal_path``; optional ``has_seg`` /
    ``has_depth`` / ``has_normal`` (default ``True``). A task whose flag is ``False`` is not read: its GT is all
    ``-1`` (seg), all ``0`` (depth) or all-zero vectors (normal), exactly the values every loss and metric ignores.

    Added keys: ``img``, ``gt_seg``, ``gt_depth``, ``gt_normal``, the three flags, ``img_shape``, ``ori_shape``
    (layouts in the module docstring).

    Raises:
        ValueError: a file has the wrong shape or dtype, or labels outside ``[-1, 13)`` (the message names it).
    """

    def transform(self, results: dict) -> dict:
        img = _load(results['img_path'], 'image', None)
        hw = img.shape[:2]
        flags = {key: bool(results.get(key, True)) for key in TASK_FLAGS.values()}
        seg = np.full(hw, IGNORE_INDEX, dtype=np.int64)
        if flags['has_seg']:
            seg = _load(results['label_path'], 'label', hw).astype(np.int64)
            if seg.min() < IGNORE_INDEX or seg.max() >= NUM_CLASSES:
                raise ValueError(f"NYUv2 file {results['label_path']}: labels must lie in [{IGNORE_INDEX}, "
                                 f'{NUM_CLASSES}), got [{seg.min()}, {seg.max()}]')
        depth = (_load(results['depth_path'], 'depth', hw)[..., 0].astype(np.float32) if flags['has_depth'] else
                 np.zeros(hw, dtype=np.float32))
        normal = (_load(results['normal_path'], 'normal', hw).astype(np.float32) if flags['has_normal'] else
                  np.zeros(hw + (3, ), dtype=np.float32))
        results.update(img=img.astype(np.float32), gt_seg=seg, gt_depth=depth, gt_normal=normal, img_shape=hw,
                       ori_shape=hw, **flags)
        return results


def _resize(array: np.ndarray, size: Tuple[int, int], mode: str) -> np.ndarray:
    """Resize ``[h, w]`` or ``[h, w, C]`` to ``size = (H, W)`` with torch (``'bilinear'`` uses align_corners)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array)).float()
    tensor = tensor[None, None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)[None]
    kwargs = dict(align_corners=True) if mode == 'bilinear' else {}
    out = F.interpolate(tensor, size=size, mode=mode, **kwargs)[0]
    return (out[0] if array.ndim == 2 else out.permute(1, 2, 0)).numpy()


@TRANSFORMS.register_module('NexusFlowRandomScaleCrop')
class RandomScaleCrop(BaseTransform):
    """MTPSL's ``RandomScaleCrop`` (no flip): crop ``1 / s`` of the image, resize back, divide depth by ``s``.

    With ``s`` drawn uniformly from ``scales``: a window of ``(int(H / s), int(W / s))`` at a uniform random offset
    is resized back to ``(H, W)``: image and normals bilinearly (``align_corners=True``, normals not re-normalised,
    as MTPSL), labels and depth by nearest neighbour; depth is divided by ``s`` (zooming in by ``s`` looks like
    moving ``s`` times closer). Leave it out of test pipelines.

    Required keys: ``img``, ``gt_seg``, ``gt_depth``, ``gt_normal``. Modified: the same. Added: ``crop_scale``
    (float ``s``), ``crop_box`` (``(top, left, height, width)`` pixels of the window in the input).

    Args:
        scales (Sequence[float]): candidate zoom factors ``>= 1`` (MTPSL: 1.0, 1.2, 1.5).
    """

    def __init__(self, scales: Sequence[float] = (1.0, 1.2, 1.5)) -> None:
        if not scales or min(scales) < 1.0:
            raise ValueError(f'scales must be a non-empty list of zoom factors >= 1, got {scales}')
        self.scales = tuple(float(s) for s in scales)

    @cache_randomness
    def _window(self, height: int, width: int) -> Tuple[float, int, int, int, int]:
        """Random ``(scale, top, left, crop_h, crop_w)``."""
        scale = self.scales[np.random.randint(len(self.scales))]
        crop_h, crop_w = int(height / scale), int(width / scale)
        top = np.random.randint(height - crop_h + 1)
        left = np.random.randint(width - crop_w + 1)
        return scale, top, left, crop_h, crop_w

    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        scale, top, left, crop_h, crop_w = self._window(height, width)
        window = (slice(top, top + crop_h), slice(left, left + crop_w))
        size = (height, width)
        results['img'] = _resize(results['img'][window], size, 'bilinear')
        results['gt_seg'] = _resize(results['gt_seg'][window], size, 'nearest').astype(np.int64)
        results['gt_depth'] = _resize(results['gt_depth'][window], size, 'nearest') / scale
        results['gt_normal'] = _resize(results['gt_normal'][window], size, 'bilinear')
        results.update(crop_scale=scale, crop_box=(top, left, crop_h, crop_w))
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scales={self.scales})'


@TRANSFORMS.register_module('NexusFlowPackNYUv2Inputs')
class PackNYUv2Inputs(BaseTransform):
    """Pack one sample as ``{'inputs': float32 [3, H, W], 'data_samples': BaseDataElement}``.

    The data sample holds ``gt_sem_seg`` (``PixelData``, ``data`` int64 ``[1, H, W]`` in ``[-1, 13)``),
    ``gt_depth`` (``data`` float32 ``[1, H, W]``, metres, 0 = invalid), ``gt_normal`` (``data`` float32
    ``[3, H, W]``, camera frame, all-zero = invalid) and the metainfo keys of ``meta_keys`` present in the results
    (the flags ``has_seg`` / ``has_depth`` / ``has_normal`` always).

    Args:
        meta_keys (Sequence[str]): result keys copied into the metainfo when present.
    """

    def __init__(self, meta_keys: Sequence[str] = META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        sample = BaseDataElement()
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(np.ascontiguousarray(results['gt_seg']))[None].long())
        sample.gt_depth = PixelData(data=torch.from_numpy(np.ascontiguousarray(results['gt_depth']))[None].float())
        sample.gt_normal = PixelData(
            data=torch.from_numpy(np.ascontiguousarray(results['gt_normal'].transpose(2, 0, 1))).float())
        meta = {key: results[key] for key in self.meta_keys if key in results}
        meta.update({key: bool(results.get(key, True)) for key in TASK_FLAGS.values()})
        sample.set_metainfo(meta)
        inputs = torch.from_numpy(np.ascontiguousarray(results['img'].transpose(2, 0, 1))).float()
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
