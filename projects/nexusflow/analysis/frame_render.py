"""One image per test frame: GT vs predicted BEV (boxes with track ids, map masks) and optional camera projections.

Input is a predicted ``Det3DDataSample`` (the test loop's output, drawn by ``TrackMapLocalVisualizer``) or its
``to_dict()`` form (what ``mmengine``'s ``DumpResults`` metric pickles, read by ``tools/visualize.py results``).
Layout:

- left panel "GT": GT map (union of the GT instance masks per class) and GT boxes coloured by instance id;
- right panel "prediction": predicted map masks, GT footprints in grey, predicted boxes coloured by track id
  (:func:`~.bev_render.track_colour`, stable across frames) and labelled with the id;
- a legend strip, then (optional) the six camera images with the predicted (track colour) and GT (white) boxes
  projected through ``lidar2img``.
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine.structures import BaseDataElement

from mmdet3d.structures import LiDARInstance3DBoxes

from ..evaluation.map_iou_metric import semantic_gt_masks
from .bev_render import BEVGrid, legend_strip, render_bev_panel, stack_panels, track_colour

__all__ = ['FrameRecord', 'frame_record', 'record_grid', 'render_frame', 'frame_filename', 'load_camera_images',
           'draw_camera_boxes']

GT_COLOUR = (235, 235, 235)
GT_FOOTPRINT_COLOUR = (150, 150, 150)
# LiDARInstance3DBoxes.corners edges (as mmdet3d's draw_camera_bbox3d_on_img)
BOX_EDGES = ((0, 1), (0, 3), (0, 4), (1, 2), (1, 5), (3, 2), (3, 7), (4, 5), (4, 7), (2, 6), (5, 6), (6, 7))
MIN_DEPTH = 0.1  # metres in front of the camera


def _numpy(values: Any) -> np.ndarray:
    """Boxes (their ``tensor``), tensors or array-likes as a numpy array of the same shape."""
    values = getattr(values, 'tensor', values)
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def _array(values: Any, dtype, width: Optional[int] = None) -> np.ndarray:
    """Boxes / tensors / lists -> numpy ``dtype`` (``[M, width]`` when ``width`` is given, else flat)."""
    return _numpy(values).astype(dtype).reshape((-1, width) if width else (-1, ))


@dataclass
class FrameRecord:
    """Everything drawn for one frame, as numpy (LiDAR frame of the frame, metres, radians).

    Attributes:
        token, scene_name, location (str), frame_idx (int): sample identity.
        gt_boxes (np.ndarray): ``[M, 9]`` float64 bottom-centre GT boxes; ``gt_ids`` ``[M]`` int64 instance ids.
        pred_boxes (np.ndarray): ``[P, 9]`` float64 predicted boxes with score ``>= score_thr``; ``pred_ids``
            ``[P]`` int64 track ids, ``pred_scores`` ``[P]`` float64 in ``[0, 1]``.
        pred_masks / gt_masks (np.ndarray, optional): ``[4, H, W]`` bool semantic masks (divider, ped_crossing,
            boundary, drivable) on the BEV grid.
        lidar2img (np.ndarray, optional): ``[N, 4, 4]`` LiDAR -> pixels of the resized images.
        img_paths (list[str]): ``N`` camera image paths; ``img_shape`` ``(H, W)`` of the resized images.
    """
    token: str
    scene_name: str
    location: str
    frame_idx: int
    gt_boxes: np.ndarray
    gt_ids: np.ndarray
    pred_boxes: np.ndarray
    pred_ids: np.ndarray
    pred_scores: np.ndarray
    pred_masks: Optional[np.ndarray] = None
    gt_masks: Optional[np.ndarray] = None
    lidar2img: Optional[np.ndarray] = None
    img_paths: List[str] = field(default_factory=list)
    img_shape: Optional[Tuple[int, int]] = None


def _instances(sample: Mapping[str, Any], key: str, ids_key: str, score_thr: float) -> Tuple[np.ndarray, ...]:
    """``(boxes [M, 9], ids [M], scores [M])`` of ``sample[key]`` (empty when absent), scores ``>= score_thr``."""
    inst = sample.get(key) or {}
    boxes = _array(inst['bboxes_3d'], np.float64, 9) if 'bboxes_3d' in inst else np.zeros((0, 9))
    ids = _array(inst[ids_key], np.int64) if ids_key in inst else np.arange(len(boxes), dtype=np.int64)
    scores = _array(inst['scores_3d'], np.float64) if 'scores_3d' in inst else np.ones(len(boxes))
    keep = scores >= score_thr
    return boxes[keep], ids[keep], scores[keep]


def frame_record(sample: Union[BaseDataElement, Mapping[str, Any]], score_thr: float = 0.0) -> FrameRecord:
    """Read a predicted sample (``Det3DDataSample`` or its ``to_dict()``) into a :class:`FrameRecord`.

    Reads ``pred_instances_3d`` (``bboxes_3d``, ``scores_3d``, ``instance_ids``), ``pred_map['masks']``,
    ``gt_instances_3d`` (``bboxes_3d``, ``instance_ids``), ``gt_map_instances`` (``labels``, ``masks``) and the
    meta keys ``token``, ``scene_name``, ``location``, ``frame_idx``, ``lidar2img``, ``img_path``, ``img_shape``;
    every part but ``token`` may be missing (it is then not drawn).
    """
    sample = sample.to_dict() if isinstance(sample, BaseDataElement) else sample
    if 'token' not in sample:
        raise KeyError(f'a result sample lacks the meta key "token" (has {sorted(sample)}); pass the predicted '
                       'data samples of the test loop or a DumpResults pickle of them')
    gt_boxes, gt_ids, _ = _instances(sample, 'gt_instances_3d', 'instance_ids', -np.inf)
    pred_boxes, pred_ids, pred_scores = _instances(sample, 'pred_instances_3d', 'instance_ids', score_thr)
    pred_map, gt_map = sample.get('pred_map') or {}, sample.get('gt_map_instances') or {}
    lidar2img = sample.get('lidar2img')
    img_shape = sample.get('img_shape')
    return FrameRecord(
        token=str(sample['token']), scene_name=str(sample.get('scene_name', 'scene')),
        location=str(sample.get('location', '')), frame_idx=int(sample.get('frame_idx', 0)),
        gt_boxes=gt_boxes, gt_ids=gt_ids, pred_boxes=pred_boxes, pred_ids=pred_ids, pred_scores=pred_scores,
        pred_masks=_numpy(pred_map['masks']).astype(bool) if 'masks' in pred_map else None,
        gt_masks=semantic_gt_masks(gt_map['labels'], gt_map['masks']).numpy() if 'masks' in gt_map else None,
        lidar2img=None if lidar2img is None else np.asarray(lidar2img, dtype=np.float64).reshape(-1, 4, 4),
        img_paths=[str(path) for path in sample.get('img_path', [])],
        img_shape=None if img_shape is None else (int(img_shape[0]), int(img_shape[1])))


def load_camera_images(record: FrameRecord, interpolation: str = 'bilinear') -> List[np.ndarray]:
    """The record's camera images, decoded and resized to ``img_shape`` as the test pipeline does (mmcv, BGR).

    Args:
        record (FrameRecord): the frame (``img_paths``, ``img_shape``).
        interpolation (str): mmcv interpolation of the pipeline's ``ResizeMultiViewImages`` (default bilinear).

    Returns:
        list[np.ndarray]: ``N`` ``[H, W, 3]`` uint8 BGR images.
    """
    images = []
    for path in record.img_paths:
        if not osp.isfile(path):
            raise FileNotFoundError(f'camera image {path} of sample {record.token} does not exist; run where the '
                                    'dumped paths are valid, or leave the camera view out (--no-cameras)')
        img = mmcv.imread(path, flag='color', channel_order='bgr')
        if record.img_shape is not None and img.shape[:2] != record.img_shape:
            img = mmcv.imresize(img, (record.img_shape[1], record.img_shape[0]), interpolation=interpolation)
        images.append(img)
    return images


def draw_camera_boxes(img: np.ndarray, boxes: np.ndarray, lidar2img: np.ndarray, colours: Sequence[Tuple],
                      thickness: int = 1) -> np.ndarray:
    """Project LiDAR boxes ``[M, >=7]`` into one camera image and draw their 12 edges (in place).

    Args:
        img (np.ndarray): ``[H, W, 3]`` uint8 BGR image whose pixels ``lidar2img`` maps to.
        boxes (np.ndarray): ``[M, >=7]`` bottom-centre LiDAR boxes.
        lidar2img (np.ndarray): ``[4, 4]`` LiDAR -> homogeneous pixels ``(u * d, v * d, d, 1)``, ``d`` depth (m).
        colours (Sequence[tuple]): ``M`` BGR colours.
        thickness (int): line width in pixels.

    Returns:
        np.ndarray: ``img``; edges with an end closer than ``MIN_DEPTH`` are skipped, the rest clipped to the image.
    """
    if len(boxes) == 0:
        return img
    corners = LiDARInstance3DBoxes(torch.as_tensor(np.asarray(boxes)[:, :7], dtype=torch.float64),
                                   box_dim=7).corners.numpy()                       # [M, 8, 3]
    homo = np.concatenate([corners, np.ones(corners.shape[:2] + (1, ))], axis=-1) @ lidar2img.T  # [M, 8, 4]
    depth = homo[..., 2]
    uv = homo[..., :2] / np.maximum(depth, MIN_DEPTH)[..., None]
    rect = (0, 0, img.shape[1], img.shape[0])
    for box_uv, box_depth, colour in zip(uv, depth, colours):
        for a, b in BOX_EDGES:
            if min(box_depth[a], box_depth[b]) < MIN_DEPTH:
                continue
            pa, pb = np.clip(np.round([box_uv[a], box_uv[b]]), -1e5, 1e5).astype(int)
            inside, pa, pb = cv2.clipLine(rect, tuple(int(v) for v in pa), tuple(int(v) for v in pb))
            if inside:
                cv2.line(img, pa, pb, tuple(int(c) for c in colour), thickness, cv2.LINE_AA)
    return img


def _camera_mosaic(record: FrameRecord, images: Sequence[np.ndarray], width: int, draw_gt: bool = True,
                   draw_pred: bool = True) -> np.ndarray:
    """The camera images with projected boxes (GT white, predictions in track colour), 3 per row, ``width`` wide."""
    drawn = []
    for index, img in enumerate(images):
        img = np.ascontiguousarray(img).copy()
        if record.lidar2img is not None and index < len(record.lidar2img):
            if draw_gt:
                draw_camera_boxes(img, record.gt_boxes, record.lidar2img[index], [GT_COLOUR] * len(record.gt_boxes))
            if draw_pred:
                draw_camera_boxes(img, record.pred_boxes, record.lidar2img[index],
                                  [track_colour(i) for i in record.pred_ids], thickness=2)
        drawn.append(img)
    drawn += [np.zeros_like(drawn[0])] * (-len(drawn) % 3)
    rows = [np.concatenate(drawn[start:start + 3], axis=1) for start in range(0, len(drawn), 3)]
    mosaic = np.concatenate(rows, axis=0)
    scaled_h = max(1, int(round(mosaic.shape[0] * width / mosaic.shape[1])))
    return cv2.resize(mosaic, (width, scaled_h), interpolation=cv2.INTER_AREA)


def render_frame(record: FrameRecord, grid: BEVGrid, images: Optional[Sequence[np.ndarray]] = None,
                 forward_up: bool = True, draw_gt: bool = True, draw_pred: bool = True) -> np.ndarray:
    """The frame's image: GT panel | prediction panel, legend, optional camera mosaic.

    Args:
        record (FrameRecord): the frame.
        grid (BEVGrid): BEV grid of the masks (``canvas_hw`` must equal the masks' ``(H, W)``).
        images (Sequence[np.ndarray], optional): ``N`` ``[H, W, 3]`` uint8 BGR camera images matching
            ``record.lidar2img`` (``None``: no camera view).
        forward_up (bool): LiDAR ``+y`` up in the BEV panels (see :func:`~.bev_render.render_bev_panel`).
        draw_gt (bool): draw the GT panel (and the GT boxes in the cameras).
        draw_pred (bool): draw the prediction panel (and the predicted boxes in the cameras).

    Returns:
        np.ndarray: ``[rows, P * H * s + 4 * (P - 1), 3]`` uint8 BGR image, ``P`` = number of panels (1 or 2).

    Raises:
        ValueError: both ``draw_gt`` and ``draw_pred`` are off.
    """
    if not (draw_gt or draw_pred):
        raise ValueError('nothing to draw: draw_gt and draw_pred are both False')
    panels = []
    if draw_gt:
        panels.append(render_bev_panel(grid, record.gt_masks,
                                       [(record.gt_boxes, [track_colour(i) for i in record.gt_ids], 1)],
                                       title=f'GT {record.scene_name} #{record.frame_idx}', forward_up=forward_up))
    if draw_pred:
        pred_colours = [track_colour(i) for i in record.pred_ids]
        panels.append(render_bev_panel(
            grid, record.pred_masks,
            [(record.gt_boxes, [GT_FOOTPRINT_COLOUR] * len(record.gt_boxes), 1),
             (record.pred_boxes, pred_colours, 2)],
            labels=(record.pred_boxes, [str(i) for i in record.pred_ids], pred_colours),
            title=f'prediction ({len(record.pred_boxes)} tracks)', forward_up=forward_up))
    out = stack_panels(panels)
    parts = [out, legend_strip(out.shape[1])]
    if images:
        parts.append(_camera_mosaic(record, images, out.shape[1], draw_gt, draw_pred))
    return np.concatenate(parts, axis=0)


def record_grid(record: FrameRecord, point_cloud_range: Sequence[float], scale: int = 8,
                canvas_size: Optional[Sequence[int]] = None) -> BEVGrid:
    """The BEV grid to draw ``record`` on: ``canvas_size`` ``(H, W)`` cells, default the shape of its map masks.

    Raises:
        ValueError: no ``canvas_size`` and the record has no map masks to take it from.
    """
    if canvas_size is None:
        shapes = [masks.shape[-2:] for masks in (record.pred_masks, record.gt_masks) if masks is not None]
        if not shapes:
            raise ValueError(f'sample {record.token} has no map masks to size the BEV grid; pass canvas_size=(H, W) '
                             '(the model\'s bev_h, bev_w)')
        canvas_size = shapes[0]
    return BEVGrid(tuple(point_cloud_range), tuple(int(v) for v in canvas_size), scale)


def frame_filename(record: FrameRecord) -> str:
    """``<scene_name>/<frame_idx:03d>_<token>.png``: frames of a scene sort in time order."""
    return osp.join(record.scene_name, f'{record.frame_idx:03d}_{record.token}.png')
