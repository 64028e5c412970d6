"""``TrackMapVisualizationHook``: one PNG per test frame with GT vs predicted tracks and map (``--show-dir``).

``tools/test.py CONFIG CKPT --show-dir DIR`` adds this hook with ``draw=True``; in a config::

    custom_hooks = [dict(type='NexusFlowTrackMapVisualizationHook', draw=True, test_out_dir='vis',
                         point_cloud_range=point_cloud_range)]

Each frame is drawn by :func:`projects.nexusflow.analysis.frame_render.render_frame` (the same drawing as
``tools/visualize.py``) into ``<test_out_dir>/<scene_name>/<frame_idx:03d>_<token>.png``; a relative
``test_out_dir`` lies under the run's log folder ``<work_dir>/<timestamp>/``. The camera view uses the batch's
uint8 images (as loaded, BGR), so no file is read twice.
"""
import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.config import Config
from mmengine.hooks import Hook

from mmdet3d.registry import HOOKS
from ..analysis.frame_render import frame_filename, frame_record, record_grid, render_frame

__all__ = ['TrackMapVisualizationHook', 'enable_visualization']

DEFAULT_PC_RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)


@HOOKS.register_module('NexusFlowTrackMapVisualizationHook')
class TrackMapVisualizationHook(Hook):
    """Draw every ``interval``-th test batch: BEV GT vs prediction (boxes with track ids, map masks), cameras.

    Args:
        draw (bool): draw at all (off by default, so a config can carry the hook at no cost).
        test_out_dir (str): output folder; relative paths are resolved under ``runner.log_dir``.
        interval (int): draw every ``interval``-th test batch (``1`` = every frame).
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max, y_max, z_max)`` of the BEV grid,
            metres, LiDAR frame (the dataset's ``point_cloud_range``).
        scale (int): pixels per BEV cell in the PNG.
        canvas_size (Sequence[int], optional): ``(H, W)`` cells of the BEV grid; default the shape of the
            samples' map masks.
        score_thr (float): draw predicted boxes with score ``>=`` this, in ``[0, 1]``.
        show_cameras (bool): add the camera images with the projected boxes.
        forward_up (bool): draw LiDAR ``+y`` up (``False``: the contract orientation, row ``i`` <-> ``y``).
    """

    priority = 'NORMAL'

    def __init__(self, draw: bool = False, test_out_dir: str = 'vis', interval: int = 1,
                 point_cloud_range: Sequence[float] = DEFAULT_PC_RANGE, scale: int = 8,
                 canvas_size: Optional[Sequence[int]] = None, score_thr: float = 0.0, show_cameras: bool = True,
                 forward_up: bool = True) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        if len(point_cloud_range) != 6:
            raise ValueError(f'point_cloud_range must have 6 values, got {point_cloud_range}')
        self.draw = draw
        self.test_out_dir = test_out_dir
        self.interval = interval
        self.point_cloud_range = tuple(float(v) for v in point_cloud_range)
        self.scale = scale
        self.canvas_size = canvas_size
        self.score_thr = score_thr
        self.show_cameras = show_cameras
        self.forward_up = forward_up
        self.out_dir: Optional[str] = None

    def before_test(self, runner) -> None:
        """Resolve and create the output folder."""
        if not self.draw:
            return
        out_dir = self.test_out_dir
        self.out_dir = out_dir if osp.isabs(out_dir) else osp.join(runner.log_dir, out_dir)
        os.makedirs(self.out_dir, exist_ok=True)

    def after_test_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        """Write one PNG per predicted sample of the batch.

        Args:
            runner: the mmengine runner.
            batch_idx (int): index of the batch in the test loop.
            data_batch (dict): ``clip_collate`` output, ``inputs['img']`` = ``B`` uint8 ``[Q, N, 3, H, W]`` (BGR).
            outputs (Sequence[Det3DDataSample]): ``B`` predicted samples (the last frame of each clip).
        """
        if not self.draw or batch_idx % self.interval or not outputs:
            return
        for index, sample in enumerate(outputs):
            record = frame_record(sample, score_thr=self.score_thr)
            images = self._images(data_batch, index) if self.show_cameras else None
            grid = record_grid(record, self.point_cloud_range, self.scale, self.canvas_size)
            path = osp.join(self.out_dir, frame_filename(record))
            os.makedirs(osp.dirname(path), exist_ok=True)
            cv2.imwrite(path, render_frame(record, grid, images, forward_up=self.forward_up))

    @staticmethod
    def _images(data_batch: Optional[dict], index: int) -> Optional[list]:
        """The ``N`` ``[H, W, 3]`` uint8 images of the last frame of batch item ``index`` (``None`` if absent)."""
        imgs = ((data_batch or {}).get('inputs') or {}).get('img')
        if imgs is None or index >= len(imgs):
            return None
        views = imgs[index][-1].detach().cpu().numpy()                               # [N, 3, H, W]
        return [np.ascontiguousarray(view.transpose(1, 2, 0)) for view in views]


def enable_visualization(cfg: Config, out_dir: str, **hook_kwargs) -> dict:
    """Switch on ``TrackMapVisualizationHook`` in ``cfg.custom_hooks`` (added when absent), writing into ``out_dir``.

    The added hook takes the config's top-level ``point_cloud_range`` (the dataset configs define it). Used by
    ``tools/test.py --show-dir`` and ``tools/visualize.py``.

    Args:
        cfg (Config): the test config, changed in place.
        out_dir (str): the hook's ``test_out_dir`` (relative: under ``<work_dir>/<timestamp>/``).
        **hook_kwargs: further hook arguments (``score_thr``, ``show_cameras``, ``scale``, ...).

    Returns:
        dict: the hook's config entry.
    """
    hooks = list(cfg.get('custom_hooks', None) or [])
    names = ('NexusFlowTrackMapVisualizationHook', TrackMapVisualizationHook)
    entry = next((hook for hook in hooks if hook.get('type') in names), None)
    if entry is None:
        entry = dict(type='NexusFlowTrackMapVisualizationHook',
                     point_cloud_range=list(cfg.get('point_cloud_range', DEFAULT_PC_RANGE)))
        hooks.append(entry)
    entry.update(draw=True, test_out_dir=out_dir, **hook_kwargs)
    cfg.custom_hooks = hooks
    return entry
