"""``TrackMapVisualizationHook``: mmdet3d's ``Det3DVisualizationHook`` for tracking + mapping samples.

The runtime base carries it switched off, next to the visualiser it draws through::

    default_hooks = dict(visualization=dict(type='NexusFlowTrackMapVisualizationHook', draw=False))
    visualizer = dict(type='NexusFlowTrackMapLocalVisualizer', vis_backends=vis_backends, name='visualizer')

``tools/test.py CONFIG CKPT --show-dir DIR --score-thr 0.3`` (or ``--show``) switches it on as mmdet3d's
``tools/test.py`` does (:func:`enable_visualization`). With ``draw=True`` it hands each predicted sample to the
runner's ``TrackMapLocalVisualizer.add_datasample``:

- test, every sample: with ``test_out_dir`` into ``<test_out_dir>/<scene_name>/<frame_idx:03d>_<token>.png`` (a
  relative ``test_out_dir`` lies in the run's folder ``<work_dir>/<timestamp>/``); with ``show`` in a window;
  otherwise to every configured ``vis_backends`` entry (name ``'test sample'``, step = running sample index);
- validation: the first sample of every ``interval``-th batch to the backends (``'val sample'``, step = iteration).

What differs from mmdet3d's hook (why it is overridden, not configured): the camera images are the batch's, as
loaded and resized by the pipeline, instead of the files read again at full size; a test image is named by scene and
frame (mmdet3d names it after the first camera's file); the output folder is resolved once before the test (mmdet3d
joins it onto itself at every iteration).
"""
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.utils import mkdir_or_exist

from mmdet3d.engine.hooks import Det3DVisualizationHook
from mmdet3d.registry import HOOKS
from ..analysis.frame_render import frame_filename, frame_record
from ..visualization import TrackMapLocalVisualizer, check_vis_task

__all__ = ['TrackMapVisualizationHook', 'enable_visualization']

VISUALIZER_TYPES = ('NexusFlowTrackMapLocalVisualizer', TrackMapLocalVisualizer)


@HOOKS.register_module('NexusFlowTrackMapVisualizationHook')
class TrackMapVisualizationHook(Det3DVisualizationHook):
    """Draw predicted tracks and map masks against GT through the runner's ``TrackMapLocalVisualizer``.

    Args:
        draw (bool): draw at all (off by default, so a config can carry the hook at no cost).
        interval (int): during validation, draw the first sample of every ``interval``-th iteration.
        score_thr (float): draw predicted boxes with score ``>=`` this, in ``[0, 1]``.
        show (bool): display each drawing in a window (the backends then receive nothing, as in mmdet3d).
        vis_task (str): ``'multi-view_det'`` (BEV and cameras) or ``'lidar_det'`` (BEV only).
        wait_time (float): seconds each shown drawing stays (0: until a key is pressed).
        test_out_dir (str, optional): folder of the test drawings instead of the backends (relative: under
            ``runner.log_dir``).
        draw_gt (bool): draw the GT panel; draw_pred (bool): draw the prediction panel.
    """

    def __init__(self, draw: bool = False, interval: int = 50, score_thr: float = 0.3, show: bool = False,
                 vis_task: str = 'multi-view_det', wait_time: float = 0., test_out_dir: Optional[str] = None,
                 draw_gt: bool = True, draw_pred: bool = True) -> None:
        check_vis_task(vis_task)
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        super().__init__(draw=draw, interval=interval, score_thr=score_thr, show=show, vis_task=vis_task,
                         wait_time=wait_time, test_out_dir=test_out_dir, draw_gt=draw_gt, draw_pred=draw_pred)
        self.out_dir: Optional[str] = None

    def _check_visualizer(self) -> None:
        if not isinstance(self._visualizer, TrackMapLocalVisualizer):
            raise TypeError(f'TrackMapVisualizationHook draws through a TrackMapLocalVisualizer, but the runner\'s '
                            f'visualizer is a {type(self._visualizer).__name__}; set visualizer = '
                            "dict(type='NexusFlowTrackMapLocalVisualizer', vis_backends=..., name='visualizer') in "
                            'the config (configs/uniad_nexusflow/_base_/default_runtime.py does)')

    def before_val(self, runner) -> None:
        """Check the visualiser before the first drawing."""
        if self.draw:
            self._check_visualizer()

    def before_test(self, runner) -> None:
        """Check the visualiser; resolve and create ``test_out_dir``."""
        if not self.draw:
            return
        self._check_visualizer()
        if self.test_out_dir is not None:
            out_dir = self.test_out_dir
            self.out_dir = out_dir if osp.isabs(out_dir) else osp.join(runner.log_dir, out_dir)
            mkdir_or_exist(self.out_dir)

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict, outputs: Sequence) -> None:
        """Draw ``outputs[0]`` to the backends every ``interval`` iterations (step ``runner.iter + batch_idx``)."""
        step = runner.iter + batch_idx
        if not self.draw or not outputs or step % self.interval:
            return
        self._visualizer.add_datasample(
            'val sample', self._data_input(data_batch, 0), data_sample=outputs[0], draw_gt=self.draw_gt,
            draw_pred=self.draw_pred, show=self.show, wait_time=self.wait_time, vis_task=self.vis_task,
            pred_score_thr=self.score_thr, step=step)

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict, outputs: Sequence) -> None:
        """Draw every predicted sample of the batch.

        Args:
            runner: the mmengine runner.
            batch_idx (int): index of the batch in the test loop.
            data_batch (dict): ``clip_collate`` output, ``inputs['img']`` = ``B`` uint8 ``[Q, N, 3, H, W]`` (BGR).
            outputs (Sequence[Det3DDataSample]): ``B`` predicted samples (the last frame of each clip).
        """
        if not self.draw:
            return
        for index, sample in enumerate(outputs):
            self._test_index += 1
            out_file = None if self.out_dir is None else osp.join(self.out_dir, frame_filename(frame_record(sample)))
            self._visualizer.add_datasample(
                'test sample', self._data_input(data_batch, index), data_sample=sample, draw_gt=self.draw_gt,
                draw_pred=self.draw_pred, show=self.show, wait_time=self.wait_time, out_file=out_file,
                vis_task=self.vis_task, pred_score_thr=self.score_thr, step=self._test_index)

    def _data_input(self, data_batch: Optional[dict], index: int) -> dict:
        """``{'img': N [H, W, 3] uint8 RGB}`` of the last frame of batch item ``index`` (``{}``: none to draw)."""
        imgs = ((data_batch or {}).get('inputs') or {}).get('img')
        if self.vis_task != 'multi-view_det' or imgs is None or index >= len(imgs):
            return {}
        views = imgs[index][-1].detach().cpu().numpy()                               # [N, 3, H, W] BGR
        return dict(img=[np.ascontiguousarray(view.transpose(1, 2, 0)[..., ::-1]) for view in views])


def enable_visualization(cfg: Config, test_out_dir: Optional[str] = None, show: bool = False,
                         wait_time: float = 2., score_thr: float = 0.1, vis_task: str = 'multi-view_det',
                         **visualizer_kwargs) -> dict:
    """Switch on ``default_hooks.visualization`` of ``cfg`` as mmdet3d's ``tools/test.py --show / --show-dir`` do.

    The config's visualiser must be a ``TrackMapLocalVisualizer``; it takes the config's top-level
    ``point_cloud_range`` (the dataset configs define it) unless it sets its own. A config without
    ``default_hooks.visualization`` gets a ``TrackMapVisualizationHook``.

    Args:
        cfg (Config): the test config, changed in place.
        test_out_dir (str, optional): folder of the drawings (relative: under ``<work_dir>/<timestamp>/``);
            ``None``: the configured ``vis_backends`` receive them.
        show (bool): display each drawing for ``wait_time`` seconds.
        wait_time (float): see ``show``.
        score_thr (float): draw predicted boxes with score ``>=`` this.
        vis_task (str): ``'multi-view_det'`` or ``'lidar_det'`` (see ``TrackMapLocalVisualizer``).
        **visualizer_kwargs: further visualiser arguments (``scale``, ``forward_up``, ``canvas_size``).

    Returns:
        dict: the hook's config entry.

    Raises:
        ValueError: the visualiser is not a ``TrackMapLocalVisualizer``, or ``vis_task`` is not supported.
    """
    check_vis_task(vis_task)
    visualizer = cfg.get('visualizer', None)
    if visualizer is None or visualizer.get('type') not in VISUALIZER_TYPES:
        raise ValueError('drawing needs visualizer = dict(type=\'NexusFlowTrackMapLocalVisualizer\', ...) in the '
                         f'config, found {visualizer}; inherit configs/uniad_nexusflow/_base_/default_runtime.py or '
                         'set it')
    if 'point_cloud_range' in cfg:
        visualizer.setdefault('point_cloud_range', list(cfg.point_cloud_range))
    visualizer.update(visualizer_kwargs)
    if cfg.get('default_hooks', None) is None:
        cfg.default_hooks = {}
    if cfg.default_hooks.get('visualization', None) is None:
        cfg.default_hooks.visualization = dict(type='NexusFlowTrackMapVisualizationHook')
    hook = cfg.default_hooks.visualization
    hook.update(draw=True, score_thr=score_thr, vis_task=vis_task)
    if show:
        hook.update(show=True, wait_time=wait_time)
    if test_out_dir is not None:
        hook['test_out_dir'] = test_out_dir
    return hook
