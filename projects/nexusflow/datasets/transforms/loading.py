"""Multi-view image loading and resizing for one frame (six nuScenes cameras, LiDAR-frame projection matrices).

Why not mmdet3d's ``LoadMultiViewImageFromFiles`` (1.4): it takes the views in the key order of the info's ``images``
dict (a reordered or incomplete info silently permutes or drops cameras; here the order is fixed and a missing camera
is named), decodes with ``mmcv.imfrombytes``, which returns ``None`` for an empty file and wrong pixels for a
truncated JPEG without naming either (here ``image_io.decode_image`` raises with the file and the sample), pads views
of different sizes instead of refusing them, and leaves ``lidar2img`` to a later transform. Its multi-sweep branch
(random previous frames) is not needed: clips are assembled by the dataset.
"""
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.fileio import get

from mmdet3d.registry import TRANSFORMS
from ..converter import CAMERAS
from ..image_io import decode_image


def lidar2img_from(cam2img: np.ndarray, lidar2cam: np.ndarray) -> np.ndarray:
    """``lidar2img [N, 4, 4] = pad(cam2img [N, 3, 3]) @ lidar2cam [N, 4, 4]`` (float64)."""
    viewpad = np.tile(np.eye(4), (len(cam2img), 1, 1))
    viewpad[:, :3, :3] = cam2img
    return viewpad @ lidar2cam


@TRANSFORMS.register_module('NexusFlowLoadMultiViewImages')
class LoadMultiViewImages(BaseTransform):
    """Load the camera images of a frame in a fixed camera order.

    Required keys: ``images`` (dict camera -> ``img_path`` (absolute, set by the dataset), ``cam2img`` 3x3,
    ``lidar2cam`` 4x4), ``token``.

    Added keys: ``img`` (list of N uint8 arrays [H, W, 3], **BGR** channel order as OpenCV reads them, values
    0..255), ``img_path`` (list of N str), ``cam_names`` (list of N str), ``cam2img`` (float64 [N, 3, 3], pixels),
    ``lidar2cam`` (float64 [N, 4, 4], metres), ``lidar2img`` (float64 [N, 4, 4], LiDAR -> pixel homogeneous),
    ``img_shape`` / ``ori_shape`` ((H, W)), ``num_views`` (N).

    Args:
        camera_order (Sequence[str]): camera channels in output order (default: the six nuScenes cameras).
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self, camera_order: Sequence[str] = CAMERAS, backend_args: Optional[dict] = None):
        if len(camera_order) == 0:
            raise ValueError('camera_order must name at least one camera')
        self.camera_order = tuple(camera_order)
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        missing = [cam for cam in self.camera_order if cam not in results['images']]
        if missing:
            raise KeyError(f'frame {results.get("token")} has no info for cameras {missing}; '
                           f'available: {sorted(results["images"])}')
        cams = [results['images'][cam] for cam in self.camera_order]
        imgs = [self._read(cam['img_path'], results.get('token')) for cam in cams]
        shapes = {img.shape for img in imgs}
        if len(shapes) != 1:
            raise ValueError(f'camera images of frame {results.get("token")} differ in size: {sorted(shapes)}; '
                             f'all views must share one (H, W, 3) shape')
        cam2img = np.array([cam['cam2img'] for cam in cams], dtype=np.float64)
        lidar2cam = np.array([cam['lidar2cam'] for cam in cams], dtype=np.float64)
        results.update(img=imgs, img_path=[cam['img_path'] for cam in cams], cam_names=list(self.camera_order),
                       cam2img=cam2img, lidar2cam=lidar2cam, lidar2img=lidar2img_from(cam2img, lidar2cam),
                       img_shape=imgs[0].shape[:2], ori_shape=imgs[0].shape[:2], num_views=len(imgs))
        return results

    def _read(self, path: str, token: Optional[str]) -> np.ndarray:
        try:
            img_bytes = get(path, backend_args=self.backend_args)
        except FileNotFoundError as err:
            raise FileNotFoundError(f'camera image {path} of sample {token} not found; check data_root, or (re)create '
                                    f'the data: python tools/create_data.py synthetic --out-dir <data_root> ... for '
                                    f'the synthetic set, tools/create_data.py nuscenes ... for nuScenes') from err
        return decode_image(img_bytes, path, token)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(camera_order={self.camera_order})'


@TRANSFORMS.register_module('NexusFlowResizeMultiViewImages')
class ResizeMultiViewImages(BaseTransform):
    """Resize every view to a fixed size and update the intrinsics.

    ``cam2img`` rows 0 and 1 are scaled by ``W_new / W`` and ``H_new / H`` (the usual mmdet3d convention) and
    ``lidar2img`` is recomputed, so a LiDAR point projects onto the same content in the resized image.

    Required keys: ``img``, ``cam2img``, ``lidar2cam``. Modified keys: ``img``, ``cam2img``, ``lidar2img``,
    ``img_shape``. Added key: ``scale_factor`` ((w_scale, h_scale)).

    Args:
        scale (Tuple[int, int]): output ``(W, H)`` in pixels (mmcv order).
        interpolation (str): mmcv interpolation name, e.g. ``'bilinear'`` or ``'area'``.
    """

    def __init__(self, scale: Tuple[int, int], interpolation: str = 'bilinear'):
        if len(scale) != 2 or min(scale) < 1:
            raise ValueError(f'scale must be (W, H) with positive sizes, got {scale}')
        self.scale = (int(scale[0]), int(scale[1]))
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        height, width = results['img'][0].shape[:2]
        w_scale, h_scale = self.scale[0] / width, self.scale[1] / height
        if (w_scale, h_scale) != (1.0, 1.0):
            results['img'] = [mmcv.imresize(img, self.scale, interpolation=self.interpolation)
                              for img in results['img']]
        cam2img = np.array(results['cam2img'], dtype=np.float64)
        cam2img[:, 0, :] *= w_scale
        cam2img[:, 1, :] *= h_scale
        results.update(cam2img=cam2img, lidar2img=lidar2img_from(cam2img, np.asarray(results['lidar2cam'])),
                       img_shape=(self.scale[1], self.scale[0]), scale_factor=(w_scale, h_scale))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(scale={self.scale}, interpolation={self.interpolation!r})'
