"""BEV-grid geometry of the encoder: cell centres, pillar points, camera projection, ego-motion alignment.

Frames and grid follow the contract in ``projects/nexusflow/README.md``: LiDAR frame (x right, y forward, z up,
metres); cell ``(i, j)`` of a ``bev_h x bev_w`` grid over ``pc_range = (x_min, y_min, z_min, x_max, y_max, z_max)``
is centred at ``x = x_min + (j + 0.5) * (x_max - x_min) / bev_w``, ``y = y_min + (i + 0.5) * (y_max - y_min) / bev_h``
and flattened row-major (``i * bev_w + j``). A "unit" BEV location is ``((x - x_min) / (x_max - x_min),
(y - y_min) / (y_max - y_min))``: the sampling-location convention of the deformable-attention op on the BEV
(column j <-> x, row i <-> y).
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor


def check_pc_range(pc_range: Sequence[float]) -> Tuple[float, ...]:
    """Return ``pc_range`` as a 6-tuple of floats; ``ValueError`` unless ``min < max`` on every axis."""
    values = tuple(float(v) for v in pc_range)
    if len(values) != 6 or any(values[k] >= values[k + 3] for k in range(3)):
        raise ValueError('point_cloud_range must be (x_min, y_min, z_min, x_max, y_max, z_max) with min < max, '
                         f'got {pc_range}')
    return values


def bev_cell_centres(bev_h: int, bev_w: int, pc_range: Sequence[float], device=None,
                     dtype: torch.dtype = torch.float32) -> Tensor:
    """LiDAR ``(x, y)`` of every BEV cell centre.

    Returns:
        Tensor: ``[bev_h * bev_w, 2]`` metres in the LiDAR frame, row-major (index ``i * bev_w + j``).
    """
    x_min, y_min, _, x_max, y_max, _ = check_pc_range(pc_range)
    xs = x_min + (torch.arange(bev_w, dtype=torch.float64) + 0.5) * ((x_max - x_min) / bev_w)
    ys = y_min + (torch.arange(bev_h, dtype=torch.float64) + 0.5) * ((y_max - y_min) / bev_h)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')  # [bev_h, bev_w] each
    return torch.stack((grid_x, grid_y), -1).reshape(-1, 2).to(device=device, dtype=dtype)


def bev_xy_to_unit(xy: Tensor, pc_range: Sequence[float]) -> Tensor:
    """Map LiDAR ``(x, y)`` metres ``[..., 2]`` to unit BEV locations ``[..., 2]`` (``[0, 1]`` inside the grid)."""
    x_min, y_min, _, x_max, y_max, _ = check_pc_range(pc_range)
    origin = xy.new_tensor([x_min, y_min])
    extent = xy.new_tensor([x_max - x_min, y_max - y_min])
    return (xy - origin) / extent


def pillar_points(bev_h: int, bev_w: int, pc_range: Sequence[float], num_points_in_pillar: int, device=None,
                  dtype: torch.dtype = torch.float32) -> Tensor:
    """3-D reference points of the BEV pillars, as in BEVFormer's ``get_reference_points(dim='3d')``.

    The ``num_points_in_pillar`` heights are spaced uniformly from ``z_min + 0.5`` m to ``z_max - 0.5`` m
    (BEVFormer's choice: -4.5, -2.17, 0.17, 2.5 m for ``z`` in ``[-5, 3]`` and 4 points).

    Returns:
        Tensor: ``[bev_h * bev_w, num_points_in_pillar, 3]`` LiDAR ``(x, y, z)`` metres, row-major cells.
    """
    _, _, z_min, _, _, z_max = check_pc_range(pc_range)
    if z_max - z_min < 1.0 or num_points_in_pillar < 1:
        raise ValueError(f'need z_max - z_min >= 1 m and num_points_in_pillar >= 1, got z range '
                         f'[{z_min}, {z_max}] and {num_points_in_pillar} points')
    xy = bev_cell_centres(bev_h, bev_w, pc_range, dtype=torch.float64)  # [HW, 2]
    zs = torch.linspace(z_min + 0.5, z_max - 0.5, num_points_in_pillar, dtype=torch.float64)  # [D]
    xyz = torch.cat((xy[:, None, :].expand(-1, num_points_in_pillar, 2),
                     zs[None, :, None].expand(xy.shape[0], -1, 1)), -1)  # [HW, D, 3]
    return xyz.to(device=device, dtype=dtype)


def project_to_cameras(points: Tensor, lidar2img: Tensor, input_hw: Tensor, image_hw: Tensor,
                       eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """Project LiDAR points into every camera, in at least float32 even under autocast.

    Args:
        points (Tensor): ``[P, 3]`` LiDAR ``(x, y, z)`` metres, shared by the batch.
        lidar2img (Tensor): ``[B, N, 4, 4]`` LiDAR -> pixel coordinates of the network input image
            (``u`` = column, ``v`` = row, pixel centres at ``+0.5``), homogeneous.
        input_hw (Tensor): ``[B, 2]`` padded input size ``(H_pad, W_pad)`` the features cover; the projected
            pixels are divided by it.
        image_hw (Tensor): ``[B, N, 2]`` size ``(H, W)`` of the valid (unpadded) image of each camera.
        eps (float): smallest depth (metres along the optical axis) of a visible point.

    Returns:
        tuple[Tensor, Tensor]:
            - ``[B, N, P, 2]`` unit image locations ``(u / W_pad, v / H_pad)``, top-left ``(0, 0)``; points
              behind the camera land far outside ``[0, 1]``.
            - ``[B, N, P]`` bool visibility: ``depth > eps`` and ``0 < u < W``, ``0 < v < H`` (strict, as in
              BEVFormer).
    """
    with torch.autocast(device_type=points.device.type, enabled=False):
        dtype = torch.promote_types(torch.promote_types(points.dtype, lidar2img.dtype), torch.float32)
        homogeneous = torch.cat((points.to(dtype), points.new_ones(points.shape[0], 1, dtype=dtype)), -1)
        cam = torch.einsum('bnij,pj->bnpi', lidar2img.to(dtype), homogeneous)  # [B, N, P, 4]
        depth = cam[..., 2]
        pixels = cam[..., :2] / depth.clamp(min=eps)[..., None]  # [B, N, P, 2] (u, v)
        image_wh = image_hw.to(dtype).flip(-1)[:, :, None, :]  # [B, N, 1, 2] (W, H)
        visible = (depth > eps) & ((pixels > 0) & (pixels < image_wh)).all(-1)
        unit = pixels / input_hw.to(dtype).flip(-1)[:, None, None, :]
    return unit, visible


def prev_bev_reference_points(prev2cur: Tensor, bev_h: int, bev_w: int, pc_range: Sequence[float]) -> Tensor:
    """Where every current BEV cell centre lies in the previous frame's BEV grid (exact ego-motion alignment).

    The cell centre ``p`` (at ``z = 0`` of the current LiDAR frame) is mapped with ``inverse(prev2cur)``
    (rotation and translation) into the previous LiDAR frame and expressed as a unit location of the previous
    grid. Sampling the previous BEV there gives the feature of the same world point.

    Args:
        prev2cur (Tensor): ``[B, 4, 4]`` invertible transform of points from the previous LiDAR frame into the
            current one (``inverse(cur_lidar2global) @ prev_lidar2global``).
        bev_h (int): rows of the grid.
        bev_w (int): columns of the grid.
        pc_range (Sequence[float]): ``(x_min, y_min, z_min, x_max, y_max, z_max)`` metres.

    Returns:
        Tensor: ``[B, bev_h * bev_w, 2]`` unit locations ``(x, y)`` in the previous grid (in ``[0, 1]`` where
        the point was inside it), dtype ``promote(prev2cur.dtype, float32)``.
    """
    with torch.autocast(device_type=prev2cur.device.type, enabled=False):
        dtype = torch.promote_types(prev2cur.dtype, torch.float32)
        cur2prev = torch.linalg.inv(prev2cur.to(dtype))  # [B, 4, 4]
        xy = bev_cell_centres(bev_h, bev_w, pc_range, device=prev2cur.device, dtype=dtype)  # [HW, 2]
        prev_xy = torch.einsum('bij,pj->bpi', cur2prev[:, :2, :2], xy) + cur2prev[:, None, :2, 3]  # [B, HW, 2]
        return bev_xy_to_unit(prev_xy, pc_range)


def relative_yaw(prev2cur: Tensor) -> Tensor:
    """Yaw gained by the ego between the previous and the current frame, from ``prev2cur`` ``[B, 4, 4]``.

    A left (counter-clockwise) turn by ``theta`` makes ``prev2cur`` rotate points by ``-theta``, so
    ``theta = atan2(R[0, 1], R[0, 0])``.

    Returns:
        Tensor: ``[B]`` radians in ``(-pi, pi]``, positive for a left turn.
    """
    return torch.atan2(prev2cur[:, 0, 1], prev2cur[:, 0, 0])
