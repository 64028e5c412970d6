"""Draw BEV map masks and 3D boxes on an image of the BEV grid (README frames contract), with OpenCV.

The canvas is the model's BEV grid upsampled by ``scale`` pixels per cell: pixel ``(r, c)`` lies in grid cell
``(r // scale, c // scale)``, so map masks ``[H, W]`` overlay it exactly and a LiDAR point ``(x, y)`` lands at the
continuous pixel position ``u = (x - x_min) / (x_max - x_min) * W * scale`` (column),
``v = (y - y_min) / (y_max - y_min) * H * scale`` (row): row ``i`` <-> LiDAR ``y``, column ``j`` <-> LiDAR ``x``.
Geometry is drawn in this contract orientation (``+y`` down the image); :func:`render_bev_panel` flips the finished
panel vertically when ``forward_up`` so that ``+y`` (the car's forward direction in the LiDAR frame) points up, then
writes the text. Boxes are mmdet3d ``LiDARInstance3DBoxes`` rows ``[x, y, z_bottom, l, w, h, yaw, ...]``, yaw
counter-clockwise from ``+x``. Colours are BGR ``uint8`` triples.
"""
import colorsys
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from mmdet3d.structures import LiDARInstance3DBoxes
from ..datasets.map_rasterizer import MAP_CLASSES

__all__ = ['BEVGrid', 'MAP_COLOURS', 'track_colour', 'box_bev_corners', 'draw_map', 'draw_boxes',
           'render_bev_panel', 'legend_strip', 'stack_panels']

Colour = Tuple[int, int, int]
# BGR per map class of the contract: divider, ped_crossing, boundary, drivable
MAP_COLOURS: Tuple[Colour, ...] = ((0, 215, 255), (255, 170, 60), (60, 60, 235), (80, 150, 80))
PAINT_ORDER = (3, 2, 0, 1)  # drivable area under the lines, crossings on top
BACKGROUND: Colour = (28, 28, 28)
SHIFT_BITS = 4  # sub-pixel precision of cv2 polygon drawing (1/16 pixel)
GOLDEN_RATIO_CONJUGATE = 0.6180339887498949
# the ego car at the LiDAR origin, heading +y (nuScenes LIDAR_TOP: x right, y forward): l, w, h of UniAD's ego box
EGO_BOX = np.array([[0.0, 0.0, 0.0, 4.08, 1.73, 1.56, np.pi / 2]])
EGO_COLOUR: Colour = (255, 255, 255)


@dataclass(frozen=True)
class BEVGrid:
    """The BEV grid of the README contract, drawn at ``scale`` pixels per cell.

    Attributes:
        point_cloud_range (tuple[float, ...]): ``(x_min, y_min, z_min, x_max, y_max, z_max)``, metres, LiDAR frame.
        canvas_hw (tuple[int, int]): ``(H, W)`` cells (the map canvas / BEV ``(bev_h, bev_w)``).
        scale (int): pixels per cell, ``>= 1``.
    """
    point_cloud_range: Tuple[float, ...]
    canvas_hw: Tuple[int, int]
    scale: int = 8

    def __post_init__(self) -> None:
        pc = tuple(float(v) for v in self.point_cloud_range)
        if len(pc) != 6 or pc[3] <= pc[0] or pc[4] <= pc[1]:
            raise ValueError(f'point_cloud_range must be (x_min, y_min, z_min, x_max, y_max, z_max) with max > min, '
                             f'got {self.point_cloud_range}')
        if len(self.canvas_hw) != 2 or min(self.canvas_hw) < 1 or int(self.scale) < 1:
            raise ValueError(f'canvas_hw must be (H, W) >= 1 and scale >= 1, got {self.canvas_hw} and {self.scale}')
        object.__setattr__(self, 'point_cloud_range', pc)
        object.__setattr__(self, 'canvas_hw', (int(self.canvas_hw[0]), int(self.canvas_hw[1])))
        object.__setattr__(self, 'scale', int(self.scale))

    @property
    def image_hw(self) -> Tuple[int, int]:
        """``(H * scale, W * scale)`` pixels of the canvas."""
        return self.canvas_hw[0] * self.scale, self.canvas_hw[1] * self.scale

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """LiDAR ``(x, y)`` metres ``[..., 2]`` -> continuous canvas pixels ``(u, v)`` ``[..., 2]`` float64.

        Pixel ``k`` spans ``[k, k + 1)``: the centre of cell ``(i, j)`` maps to ``((j + 0.5) * s, (i + 0.5) * s)``.
        """
        x_min, y_min, _, x_max, y_max, _ = self.point_cloud_range
        height, width = self.image_hw
        xy = np.asarray(xy, dtype=np.float64)
        u = (xy[..., 0] - x_min) / (x_max - x_min) * width
        v = (xy[..., 1] - y_min) / (y_max - y_min) * height
        return np.stack([u, v], axis=-1)

    def blank(self) -> np.ndarray:
        """A ``[H * scale, W * scale, 3]`` uint8 canvas filled with the background colour."""
        return np.full(self.image_hw + (3, ), BACKGROUND, dtype=np.uint8)


def track_colour(track_id: int) -> Colour:
    """A saturated BGR colour for a track id, the same in every frame and run (golden-ratio hue walk)."""
    hue = (int(track_id) * GOLDEN_RATIO_CONJUGATE) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(round(blue * 255)), int(round(green * 255)), int(round(red * 255))


def box_bev_corners(boxes: np.ndarray) -> np.ndarray:
    """BEV footprints of boxes ``[M, >=7]`` (``x, y, z, l, w, h, yaw``, metres / rad) -> ``[M, 4, 2]`` ``(x, y)``.

    Corner order (``LiDARInstance3DBoxes.corners`` indices 0, 3, 7, 4): rear-right, rear-left, front-left,
    front-right, where front is ``+l / 2`` along the heading.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4, 2))
    if boxes.ndim != 2 or boxes.shape[1] < 7:
        raise ValueError(f'boxes must be [M, >=7] (x, y, z, l, w, h, yaw, ...), got shape {boxes.shape}')
    corners = LiDARInstance3DBoxes(torch.as_tensor(boxes[:, :7]), box_dim=7).corners.numpy()
    return corners[:, [0, 3, 7, 4], :2]


def draw_map(canvas: np.ndarray, masks: np.ndarray, grid: BEVGrid, alpha: float = 0.75) -> np.ndarray:
    """Blend the semantic map masks onto ``canvas`` in place (drivable first, then boundary, divider, crossing).

    Args:
        canvas (np.ndarray): ``[H * s, W * s, 3]`` uint8 BGR canvas of ``grid``.
        masks (np.ndarray): ``[4, H, W]`` bool masks (divider, ped_crossing, boundary, drivable) on the grid.
        grid (BEVGrid): the grid.
        alpha (float): opacity in ``[0, 1]`` of the class colours.

    Returns:
        np.ndarray: ``canvas``.
    """
    masks = np.asarray(masks).astype(bool)
    if masks.shape != (len(MAP_CLASSES), ) + grid.canvas_hw:
        raise ValueError(f'masks must be [{len(MAP_CLASSES)}, H, W] = [{len(MAP_CLASSES)}, {grid.canvas_hw[0]}, '
                         f'{grid.canvas_hw[1]}] on the grid, got {masks.shape}')
    for cls in PAINT_ORDER:
        pixels = np.repeat(np.repeat(masks[cls], grid.scale, axis=0), grid.scale, axis=1)
        colour = np.asarray(MAP_COLOURS[cls], dtype=np.float64)
        canvas[pixels] = np.round((1 - alpha) * canvas[pixels] + alpha * colour).astype(np.uint8)
    return canvas


def draw_boxes(canvas: np.ndarray, boxes: np.ndarray, colours: Sequence[Colour], grid: BEVGrid,
               thickness: int = 1, filled: bool = False) -> np.ndarray:
    """Draw box footprints (and a centre-to-front heading tick) onto ``canvas`` in place.

    Args:
        canvas (np.ndarray): ``[H * s, W * s, 3]`` uint8 BGR canvas of ``grid`` (contract orientation).
        boxes (np.ndarray): ``[M, >=7]`` LiDAR boxes (bottom centre, ``l`` along the heading, yaw CCW from +x).
        colours (Sequence[Colour]): ``M`` BGR colours.
        grid (BEVGrid): the grid.
        thickness (int): outline width in pixels.
        filled (bool): fill the footprint instead of outlining it; a filled footprint covers every pixel it overlaps
            (corners quantised to 1/16 pixel).

    Returns:
        np.ndarray: ``canvas``.
    """
    corners = box_bev_corners(boxes)
    if len(colours) != len(corners):
        raise ValueError(f'got {len(colours)} colours for {len(corners)} boxes')
    factor = 1 << SHIFT_BITS
    for footprint, colour in zip(corners, colours):
        # pixel k spans [k, k + 1): cv2 puts pixel k's centre at integer k, hence the -0.5
        pts = np.round((grid.to_pixels(footprint) - 0.5) * factor).astype(np.int32)
        front = np.round((grid.to_pixels(footprint[2:].mean(axis=0)) - 0.5) * factor).astype(np.int32)
        centre = np.round((grid.to_pixels(footprint.mean(axis=0)) - 0.5) * factor).astype(np.int32)
        colour = tuple(int(c) for c in colour)
        if filled:
            cv2.fillPoly(canvas, [pts], colour, lineType=cv2.LINE_8, shift=SHIFT_BITS)
        else:
            cv2.polylines(canvas, [pts], True, colour, thickness, cv2.LINE_8, SHIFT_BITS)
            cv2.line(canvas, tuple(int(v) for v in centre), tuple(int(v) for v in front), colour, thickness,
                     cv2.LINE_8, SHIFT_BITS)
    return canvas


def _label_positions(boxes: np.ndarray, grid: BEVGrid, forward_up: bool) -> np.ndarray:
    """Integer ``(u, v)`` display pixels of the box centres (``v`` mirrored when ``forward_up``)."""
    uv = grid.to_pixels(box_bev_corners(boxes).mean(axis=1)) if len(boxes) else np.zeros((0, 2))
    if forward_up:
        uv[:, 1] = grid.image_hw[0] - uv[:, 1]
    return np.round(uv).astype(int)


def render_bev_panel(grid: BEVGrid, masks: Optional[np.ndarray] = None,
                     layers: Sequence[Tuple[np.ndarray, Sequence[Colour], int]] = (),
                     labels: Optional[Tuple[np.ndarray, Sequence[str], Sequence[Colour]]] = None,
                     title: str = '', forward_up: bool = True, draw_ego: bool = True) -> np.ndarray:
    """One BEV panel: map masks, ego car, box layers, then (after the optional flip) text labels and the title.

    Args:
        grid (BEVGrid): the grid.
        masks (np.ndarray, optional): ``[4, H, W]`` bool semantic masks, see :func:`draw_map`.
        layers (Sequence[tuple]): ``(boxes [M, >=7], colours (M BGR), thickness)`` drawn in order.
        labels (tuple, optional): ``(boxes [K, >=7], texts (K str), colours (K BGR))`` written at the box centres.
        title (str): text in the top-left corner.
        forward_up (bool): flip so that LiDAR ``+y`` points up; ``False`` keeps the contract orientation.
        draw_ego (bool): fill the ego footprint (``EGO_BOX``, white) at the LiDAR origin.

    Returns:
        np.ndarray: ``[H * s, W * s, 3]`` uint8 BGR panel.
    """
    canvas = grid.blank()
    if masks is not None:
        draw_map(canvas, masks, grid)
    if draw_ego:
        draw_boxes(canvas, EGO_BOX, [EGO_COLOUR], grid, filled=True)
    for boxes, colours, thickness in layers:
        draw_boxes(canvas, boxes, colours, grid, thickness=thickness)
    if forward_up:
        canvas = np.ascontiguousarray(canvas[::-1])
    if labels is not None:
        boxes, texts, colours = labels
        for (u, v), text, colour in zip(_label_positions(boxes, grid, forward_up), texts, colours):
            cv2.putText(canvas, str(text), (int(u) + 3, int(v) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        tuple(int(c) for c in colour), 1, cv2.LINE_AA)
    if title:
        cv2.putText(canvas, title, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def legend_strip(width: int, height: int = 22) -> np.ndarray:
    """``[height, width, 3]`` uint8 strip naming the map-class colours."""
    strip = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    x = 6
    for name, colour in zip(MAP_CLASSES, MAP_COLOURS):
        cv2.rectangle(strip, (x, 6), (x + 10, 16), colour, -1)
        cv2.putText(strip, name, (x + 14, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
        x += 24 + 8 * len(name)
    return strip


def stack_panels(panels: List[np.ndarray], gap: int = 4) -> np.ndarray:
    """Panels of equal height side by side with a ``gap``-pixel separator."""
    sep = np.full((panels[0].shape[0], gap, 3), 255, dtype=np.uint8)
    out = [panels[0]]
    for panel in panels[1:]:
        out += [sep, panel]
    return np.concatenate(out, axis=1)
