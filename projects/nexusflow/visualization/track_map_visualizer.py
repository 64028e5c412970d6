"""``TrackMapLocalVisualizer``: mmdet3d's ``Det3DLocalVisualizer`` drawing a tracking + online-mapping frame.

Configured as the runner's visualiser (``configs/uniad_nexusflow/_base_/default_runtime.py``)::

    visualizer = dict(type='NexusFlowTrackMapLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                      name='visualizer', point_cloud_range=point_cloud_range)

and driven by ``TrackMapVisualizationHook`` (``default_hooks.visualization``) or mmdet3d's own
``Det3DVisualizationHook`` with ``vis_task='multi-view_det'``. ``add_datasample`` draws one predicted sample: BEV
GT | prediction panels (map masks, boxes coloured and labelled by track id), a legend, and for ``multi-view_det``
the camera images with the projected GT (white) and predicted (track colour) boxes. The image then goes where
mmdet3d sends its drawings: ``show`` opens a window, ``out_file`` writes one file, otherwise ``add_image`` gives it
to every configured backend (``LocalVisBackend``: ``<save_dir>/vis_image/<name>_<step>.png``;
``TensorboardVisBackend``: an image summary ``<name>`` at ``step``; ``WandbVisBackend``: a logged image).

What mmdet3d lacks, hence the drawing in :mod:`projects.nexusflow.analysis.frame_render` (OpenCV on one numpy
array): its ``add_datasample`` draws boxes on points (Open3D) or on single images with one colour per class; there
is no BEV panel with map masks and no colour / label per track id, and ``draw_proj_bboxes_3d`` clamps the depth of
corners behind a camera instead of dropping those edges, so that such boxes smear across the image. The finished
frame is handed to the visualiser API through ``set_image`` (so ``get_image`` and the inherited ``draw_*`` methods
work on it); backends receive the array itself, which ``get_image`` would only re-render through matplotlib.
"""
from typing import Optional, Sequence, Union

import mmcv
import numpy as np
from mmengine.dist import master_only
from mmengine.structures import BaseDataElement
from mmengine.visualization import Visualizer

from mmdet3d.registry import VISUALIZERS
from mmdet3d.visualization import Det3DLocalVisualizer
from ..analysis.frame_render import frame_record, record_grid, render_frame

__all__ = ['TrackMapLocalVisualizer', 'VIS_TASKS', 'DEFAULT_PC_RANGE', 'check_vis_task']

DEFAULT_PC_RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)
# mmdet3d's vis_task names that apply to a camera-only tracking + mapping model
VIS_TASKS = {'multi-view_det': 'BEV panels and the camera images with projected boxes',
             'lidar_det': 'BEV panels only (LiDAR-frame bird\'s-eye view; no point cloud is loaded)'}


def check_vis_task(vis_task: str) -> None:
    """Raise ``ValueError`` naming the supported tasks unless ``vis_task`` is one of :data:`VIS_TASKS`."""
    if vis_task not in VIS_TASKS:
        raise ValueError(f'vis_task {vis_task!r} is not drawn by TrackMapLocalVisualizer; use one of '
                         + '; '.join(f'{name!r}: {what}' for name, what in VIS_TASKS.items()))


@VISUALIZERS.register_module('NexusFlowTrackMapLocalVisualizer')
class TrackMapLocalVisualizer(Det3DLocalVisualizer):
    """Draw predicted tracks and map masks against GT in BEV, and the tracks in the cameras.

    Args:
        name (str): instance name (the runner's is ``'visualizer'``).
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max, y_max, z_max)`` of the BEV grid, metres,
            LiDAR frame (the dataset's ``point_cloud_range``).
        scale (int): pixels per BEV cell.
        canvas_size (Sequence[int], optional): ``(H, W)`` cells of the BEV grid; default the shape of the samples'
            map masks.
        forward_up (bool): draw LiDAR ``+y`` up (``False``: the contract orientation, row ``i`` <-> ``y``).
        **kwargs: ``Det3DLocalVisualizer`` arguments (``vis_backends``, ``save_dir``, ...).
    """

    def __init__(self, name: str = 'visualizer', point_cloud_range: Sequence[float] = DEFAULT_PC_RANGE,
                 scale: int = 8, canvas_size: Optional[Sequence[int]] = None, forward_up: bool = True,
                 **kwargs) -> None:
        if len(point_cloud_range) != 6:
            raise ValueError(f'point_cloud_range must have 6 values, got {point_cloud_range}')
        super().__init__(name=name, **kwargs)
        self.point_cloud_range = tuple(float(v) for v in point_cloud_range)
        self.scale = int(scale)
        self.canvas_size = None if canvas_size is None else tuple(int(v) for v in canvas_size)
        self.forward_up = forward_up

    def draw_track_map(self, data_sample: Union[BaseDataElement, dict], images: Optional[Sequence[np.ndarray]] = None,
                       score_thr: float = 0.0, draw_gt: bool = True, draw_pred: bool = True) -> np.ndarray:
        """Draw one frame and make it the visualiser's image.

        Args:
            data_sample (Det3DDataSample | dict): a predicted sample of the test loop or its ``to_dict()`` (a
                ``DumpResults`` entry); see :func:`~projects.nexusflow.analysis.frame_render.frame_record`.
            images (Sequence[np.ndarray], optional): ``N`` ``[h, w, 3]`` uint8 RGB camera images in the order of
                the sample's ``lidar2img``; resized (bilinear) to its ``img_shape`` when they differ (e.g. files
                read by ``Det3DVisualizationHook``). ``None``: no camera view.
            score_thr (float): draw predicted boxes with score ``>=`` this.
            draw_gt (bool): draw the GT panel and the GT boxes in the cameras.
            draw_pred (bool): draw the prediction panel and the predicted boxes in the cameras.

        Returns:
            np.ndarray: ``[H, W, 3]`` uint8 RGB image (also ``self.get_image()``).
        """
        record = frame_record(data_sample, score_thr=score_thr)
        grid = record_grid(record, self.point_cloud_range, self.scale, self.canvas_size)
        views = None
        if images is not None:
            views = [np.ascontiguousarray(np.asarray(img, dtype=np.uint8)[..., ::-1]) for img in images]  # BGR
            if record.img_shape is not None:
                height, width = record.img_shape
                views = [view if view.shape[:2] == (height, width) else mmcv.imresize(view, (width, height))
                         for view in views]
        drawn = np.ascontiguousarray(render_frame(record, grid, views, forward_up=self.forward_up, draw_gt=draw_gt,
                                                  draw_pred=draw_pred)[..., ::-1])
        self.set_image(drawn)
        return drawn

    @master_only
    def add_datasample(self, name: str, data_input: dict, data_sample: Optional[BaseDataElement] = None,
                       draw_gt: bool = True, draw_pred: bool = True, show: bool = False, wait_time: float = 0.,
                       out_file: Optional[str] = None, o3d_save_path: Optional[str] = None,
                       vis_task: str = 'multi-view_det', pred_score_thr: float = 0.3, step: int = 0,
                       show_pcd_rgb: bool = False) -> None:
        """Draw ``data_sample`` and show it, write it to ``out_file`` or else to every backend.

        The signature is ``Det3DLocalVisualizer.add_datasample``'s, so mmdet3d's hooks can call it;
        ``o3d_save_path`` and ``show_pcd_rgb`` concern point clouds and are not used.

        Args:
            name (str): image name (backends: file name prefix / summary tag; window title).
            data_input (dict): ``img``: ``N`` ``[h, w, 3]`` uint8 RGB camera images (used for ``multi-view_det``).
            data_sample (Det3DDataSample | dict): the predicted sample.
            draw_gt, draw_pred (bool): draw the GT / prediction panel.
            show (bool): display the image in a window for ``wait_time`` seconds (0: until a key is pressed).
            wait_time (float): see ``show``.
            out_file (str, optional): write the image to this file (``.png`` / ``.jpg``) instead of the backends,
                as mmdet3d does.
            vis_task (str): a key of :data:`VIS_TASKS`.
            pred_score_thr (float): draw predicted boxes with score ``>=`` this.
            step (int): the backends' step.
        """
        check_vis_task(vis_task)
        if data_sample is None:
            raise ValueError('TrackMapLocalVisualizer.add_datasample needs the predicted data_sample to draw')
        images = data_input.get('img') if vis_task == 'multi-view_det' else None
        drawn = self.draw_track_map(data_sample, images, score_thr=pred_score_thr, draw_gt=draw_gt,
                                    draw_pred=draw_pred)
        if show:
            Visualizer.show(self, drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(drawn[..., ::-1], out_file)
        else:
            self.add_image(name, drawn, step)
