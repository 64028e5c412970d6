"""Differentiable rendering of task outputs onto the BEV canvas, the common space of the PS-MTL baselines.

MTPSL and JTR were written for dense image tasks (segmentation, depth, normals) whose predictions and labels are
already pixel maps. Our tasks are heterogeneous, so both are brought onto the map canvas (README "Map canvas": row
``i`` <-> LiDAR ``y``, column ``j`` <-> LiDAR ``x``, cell ``(i, j)`` centred at
``(x_min + (j + 0.5) * dx, y_min + (i + 0.5) * dy)``):

- tracking -> per-class centre heatmaps, each object a truncated Gaussian splat of peak ``score`` at its centre,
  and optionally one box-occupancy channel (a soft footprint of the rotated box);
- mapping -> the per-class semantic masks.

Splats are combined with a per-cell maximum (CenterNet's heatmap rule), computed by a scatter over a small window
of cells around each object, so memory grows with ``objects x window`` rather than ``objects x cells``. Everything
is differentiable w.r.t. centres, sizes, headings and scores (the window position itself is not).
"""
import math
from typing import NamedTuple, Sequence, Tuple

import torch
from torch import Tensor


class BEVCanvas(NamedTuple):
    """An ``H x W`` canvas over ``[x_min, x_max] x [y_min, y_max]`` metres in the LiDAR frame."""
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    height: int
    width: int

    @classmethod
    def from_range(cls, point_cloud_range: Sequence[float], canvas_hw: Tuple[int, int]) -> 'BEVCanvas':
        """Canvas of ``canvas_hw = (H, W)`` over a 4-value ``(x_min, y_min, x_max, y_max)`` or 6-value
        ``(x_min, y_min, z_min, x_max, y_max, z_max)`` range."""
        if len(point_cloud_range) not in (4, 6):
            raise ValueError(f'point_cloud_range must have 4 or 6 values, got {len(point_cloud_range)}: '
                             f'{point_cloud_range}')
        rng = [float(v) for v in point_cloud_range]
        x_min, y_min, x_max, y_max = rng if len(rng) == 4 else (rng[0], rng[1], rng[3], rng[4])
        height, width = int(canvas_hw[0]), int(canvas_hw[1])
        if x_max <= x_min or y_max <= y_min or height < 1 or width < 1:
            raise ValueError(f'need x_max > x_min, y_max > y_min and a positive canvas, got range {rng} and '
                             f'canvas {tuple(canvas_hw)}')
        return cls(x_min, y_min, x_max, y_max, height, width)

    @property
    def cell_size(self) -> Tuple[float, float]:
        """``(dx, dy)``: metres per column and per row."""
        return (self.x_max - self.x_min) / self.width, (self.y_max - self.y_min) / self.height

    def to_cells(self, xy: Tensor) -> Tensor:
        """LiDAR ``(x, y)`` metres ``[..., 2]`` -> continuous ``(column, row)`` ``[..., 2]``; cell ``(i, j)``'s
        centre is ``(j, i)``."""
        dx, dy = self.cell_size
        return torch.stack(((xy[..., 0] - self.x_min) / dx - 0.5, (xy[..., 1] - self.y_min) / dy - 0.5), dim=-1)


class Window(NamedTuple):
    """Cells of a ``(2 ry + 1) x (2 rx + 1)`` window around each object: ``P`` cells per object."""
    rows: Tensor      # [B, N, P] long
    cols: Tensor      # [B, N, P] long
    offsets: Tensor   # [B, N, P, 2] float metres (x, y) from the object centre to the cell centre
    inside: Tensor    # [B, N, P] bool, the cell lies on the canvas


def window_cells(centres: Tensor, canvas: BEVCanvas, radius: float) -> Window:
    """The cells within ``radius`` metres (per axis, plus half a cell) of each centre.

    Args:
        centres (Tensor): ``[B, N, 2]`` float LiDAR ``(x, y)`` metres.
        canvas (BEVCanvas): the canvas.
        radius (float): metres; the window is centred on the cell nearest to each centre, so it covers every cell
            whose centre is within ``radius`` along both axes.
    """
    dx, dy = canvas.cell_size
    rx, ry = math.ceil(radius / dx + 0.5), math.ceil(radius / dy + 0.5)
    cells = canvas.to_cells(centres)
    base = cells.detach().round().long()  # [B, N, 2] (column, row)
    grid_r, grid_c = torch.meshgrid(torch.arange(-ry, ry + 1, device=centres.device),
                                    torch.arange(-rx, rx + 1, device=centres.device), indexing='ij')
    cols = base[..., 0, None] + grid_c.flatten()  # [B, N, P]
    rows = base[..., 1, None] + grid_r.flatten()
    offsets = torch.stack(((cols - cells[..., 0, None]) * dx, (rows - cells[..., 1, None]) * dy), dim=-1)
    inside = (cols >= 0) & (cols < canvas.width) & (rows >= 0) & (rows < canvas.height)
    return Window(rows, cols, offsets, inside)


def splat_max(window: Window, values: Tensor, valid: Tensor, canvas: BEVCanvas) -> Tensor:
    """Per-cell maximum of non-negative window values.

    Args:
        window (Window): cells of ``N`` objects, ``P`` each.
        values (Tensor): ``[B, N, P, K]`` float ``>= 0``, the value of each object at each window cell per channel.
        valid (Tensor): ``[B, N]`` bool, objects to draw.
        canvas (BEVCanvas): the canvas.

    Returns:
        Tensor: ``[B, K, H, W]``, ``max`` over the objects covering each cell (0 where none does).
    """
    batch, num, cells, channels = values.shape
    keep = (window.inside & valid[..., None]).unsqueeze(-1)
    values = torch.where(keep, values, values.new_zeros(()))
    index = torch.where(keep.squeeze(-1), window.rows * canvas.width + window.cols, 0)
    src = values.permute(0, 3, 1, 2).reshape(batch, channels, num * cells)
    index = index.reshape(batch, 1, num * cells).expand(-1, channels, -1)
    out = values.new_zeros((batch, channels, canvas.height * canvas.width))
    out = out.scatter_reduce(2, index, src, reduce='amax', include_self=True)
    return out.view(batch, channels, canvas.height, canvas.width)


def render_centre_heatmap(centres: Tensor, scores: Tensor, valid: Tensor, canvas: BEVCanvas,
                          sigma: float = 1.0) -> Tensor:
    """Per-class centre heatmaps: ``H_k(cell) = max_n scores[n, k] * exp(-d_n(cell)^2 / (2 sigma^2))``, with
    ``d_n`` the metric distance from object ``n``'s centre to the cell centre, truncated to 0 beyond ``3 sigma``.

    Args:
        centres (Tensor): ``[B, N, 2]`` float LiDAR ``(x, y)`` metres.
        scores (Tensor): ``[B, N, K]`` float in ``[0, 1]``, per-class scores (1 on the class of a label).
        valid (Tensor): ``[B, N]`` bool, objects to draw (padding and non-objects ``False``).
        canvas (BEVCanvas): the canvas.
        sigma (float): Gaussian standard deviation in metres.

    Returns:
        Tensor: ``[B, K, H, W]`` float in ``[0, 1]``.
    """
    if sigma <= 0:
        raise ValueError(f'sigma must be > 0 metres, got {sigma}')
    window = window_cells(centres, canvas, 3.0 * sigma)
    dist2 = window.offsets.pow(2).sum(-1)  # [B, N, P]
    weight = torch.exp(-dist2 / (2.0 * sigma ** 2)) * (dist2 <= (3.0 * sigma) ** 2)
    return splat_max(window, weight.unsqueeze(-1) * scores.unsqueeze(2), valid, canvas)


def render_box_occupancy(boxes: Tensor, scores: Tensor, valid: Tensor, canvas: BEVCanvas, softness: float = 0.25,
                         max_extent: float = 5.0) -> Tensor:
    """Soft footprints of rotated boxes: ``O(cell) = max_n s_n * sig((l_n/2 - |u|)/tau) * sig((w_n/2 - |v|)/tau)``,
    with ``(u, v)`` the cell centre in box ``n``'s frame (``u`` along the heading) and ``tau = softness``.

    Args:
        boxes (Tensor): ``[B, N, 6]`` float ``(cx, cy, l, w, sin yaw, cos yaw)``: centre and sizes in metres, LiDAR
            frame, yaw counter-clockwise from +x; ``(sin, cos)`` need not be normalised.
        scores (Tensor): ``[B, N]`` float in ``[0, 1]``, object scores (1 for labels).
        valid (Tensor): ``[B, N]`` bool, objects to draw.
        canvas (BEVCanvas): the canvas.
        softness (float): edge width ``tau`` in metres.
        max_extent (float): metres from the centre (per axis) that are drawn; larger boxes are cut there.

    Returns:
        Tensor: ``[B, 1, H, W]`` float in ``[0, 1]``.
    """
    if softness <= 0 or max_extent <= 0:
        raise ValueError(f'softness and max_extent must be > 0 metres, got {softness} and {max_extent}')
    window = window_cells(boxes[..., :2], canvas, max_extent)
    norm = torch.sqrt(boxes[..., 4] ** 2 + boxes[..., 5] ** 2).clamp(min=1e-6)
    sin, cos = (boxes[..., 4] / norm)[..., None], (boxes[..., 5] / norm)[..., None]
    off_x, off_y = window.offsets.unbind(-1)
    along, across = cos * off_x + sin * off_y, -sin * off_x + cos * off_y  # [B, N, P]
    inside_l = torch.sigmoid((boxes[..., 2, None] / 2 - along.abs()) / softness)
    inside_w = torch.sigmoid((boxes[..., 3, None] / 2 - across.abs()) / softness)
    values = (scores[..., None] * inside_l * inside_w).unsqueeze(-1)
    return splat_max(window, values, valid, canvas)


def semantic_masks(labels: Tensor, masks: Tensor, num_classes: int) -> Tensor:
    """Union of instance masks per class.

    Args:
        labels (Tensor): ``[K]`` long class of each instance, in ``[0, num_classes)``.
        masks (Tensor): ``[K, H, W]`` instance masks in ``{0, 1}`` (any dtype).
        num_classes (int): output channels.

    Returns:
        Tensor: ``[num_classes, H, W]`` float32 in ``{0, 1}``.
    """
    out = masks.new_zeros((num_classes, *masks.shape[-2:]), dtype=torch.float32)
    if len(labels):
        index = labels.long().view(-1, 1, 1).expand(-1, *masks.shape[-2:])
        out = out.scatter_reduce(0, index, masks.float(), reduce='amax', include_self=True)
    return out
