"""BEV / camera rendering: boxes and masks land on the pixels the README grid contract puts them on."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from projects.nexusflow.analysis import (BEVGrid, box_bev_corners, draw_boxes, draw_map, frame_record, record_grid,
                                         render_bev_panel, render_frame, track_colour)
from projects.nexusflow.analysis.bev_render import BACKGROUND, MAP_COLOURS
from projects.nexusflow.analysis.frame_render import draw_camera_boxes

PC_RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)
GRID = BEVGrid(PC_RANGE, (50, 50), scale=4)  # 2.048 m cells, 0.512 m pixels, 200 x 200 canvas
METRES_PER_PIXEL = 0.512


def lidar_xy(u, v):
    """Continuous canvas pixel (u column, v row) -> LiDAR (x, y)."""
    return -51.2 + u * METRES_PER_PIXEL, -51.2 + v * METRES_PER_PIXEL


def drawn(canvas):
    return np.any(canvas != BACKGROUND, axis=-1)


def test_grid_maps_cell_centres_to_pixel_centres():
    i, j = 30, 20
    x, y = -51.2 + (j + 0.5) * 2.048, -51.2 + (i + 0.5) * 2.048
    np.testing.assert_allclose(GRID.to_pixels([x, y]), [(j + 0.5) * 4, (i + 0.5) * 4])
    assert GRID.image_hw == (200, 200)
    with pytest.raises(ValueError, match='point_cloud_range'):
        BEVGrid((0, 0, 0, -1, 1, 1), (2, 2))


@pytest.mark.parametrize('yaw, rows, cols', [(0.0, (120, 124), (78, 86)), (np.pi / 2, (118, 126), (80, 84))])
def test_filled_box_covers_exactly_its_pixels(yaw, rows, cols):
    """A 7.5 x 3.5 pixel box centred at pixel (u, v) = (82.5, 122.5): heading +x (yaw 0) or +y (yaw pi/2)."""
    x, y = lidar_xy(82.5, 122.5)
    box = np.array([[x, y, -1.0, 7.5 * METRES_PER_PIXEL, 3.5 * METRES_PER_PIXEL, 1.5, yaw]])
    canvas = draw_boxes(GRID.blank(), box, [(0, 0, 255)], GRID, filled=True)
    expected = np.zeros(GRID.image_hw, dtype=bool)
    expected[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = True  # every pixel the footprint overlaps
    np.testing.assert_array_equal(drawn(canvas), expected)
    assert tuple(canvas[122, 82]) == (0, 0, 255)


def test_rotated_box_and_heading_tick():
    x, y = lidar_xy(100.0, 60.0)
    box = np.array([[x, y, 0.0, 8.0, 3.0, 1.5, np.deg2rad(30.0)]])
    corners = GRID.to_pixels(box_bev_corners(box)[0])
    centre_uv = corners.mean(axis=0)
    np.testing.assert_allclose(centre_uv, [100.0, 60.0], atol=1e-9)
    front_mid = corners[2:].mean(axis=0)  # heading 30 deg CCW from +x: +u and +v (row i <-> +y)
    np.testing.assert_allclose(front_mid - centre_uv, 4.0 / METRES_PER_PIXEL * np.array([np.cos(np.pi / 6),
                                                                                         np.sin(np.pi / 6)]))
    mask = drawn(draw_boxes(GRID.blank(), box, [(255, 255, 255)], GRID, filled=True))
    rows, cols = np.mgrid[:200, :200]
    rel = np.stack([cols + 0.5 - 100.0, rows + 0.5 - 60.0], axis=-1) @ np.array(
        [[np.cos(np.pi / 6), -np.sin(np.pi / 6)], [np.sin(np.pi / 6), np.cos(np.pi / 6)]])
    half = np.array([4.0, 1.5]) / METRES_PER_PIXEL
    slack = np.abs(rel) - half  # > 0 outside along that axis, in pixels
    assert mask[np.all(slack < -1.0, axis=-1)].all()  # well inside: drawn
    assert not mask[np.any(slack > 1.0, axis=-1)].any()  # well outside: not drawn
    outline = drawn(draw_boxes(GRID.blank(), box, [(255, 255, 255)], GRID))
    tick = np.floor(centre_uv + 0.5 * (front_mid - centre_uv)).astype(int)  # pixel of the tick's midpoint
    back = np.floor(centre_uv - 0.5 * (front_mid - centre_uv)).astype(int)  # its mirror towards the rear
    assert outline[tick[1] - 1:tick[1] + 2, tick[0] - 1:tick[0] + 2].any()
    assert not outline[back[1] - 1:back[1] + 2, back[0] - 1:back[0] + 2].any()


def test_map_masks_blend_on_their_cells_and_forward_up_flips():
    masks = np.zeros((4, 50, 50), dtype=bool)
    masks[3, 3, 7] = True  # drivable cell (i=3, j=7)
    canvas = draw_map(GRID.blank(), masks, GRID)
    expected = np.zeros(GRID.image_hw, dtype=bool)
    expected[12:16, 28:32] = True
    np.testing.assert_array_equal(drawn(canvas), expected)
    blend = np.round(0.25 * np.array(BACKGROUND) + 0.75 * np.array(MAP_COLOURS[3])).astype(np.uint8)
    np.testing.assert_array_equal(canvas[12, 28], blend)
    box = np.array([[*lidar_xy(20.0, 30.0), 0.0, 4.0, 2.0, 1.5, 0.3]])
    contract = render_bev_panel(GRID, masks, [(box, [(0, 255, 0)], 1)], forward_up=False)
    np.testing.assert_array_equal(render_bev_panel(GRID, masks, [(box, [(0, 255, 0)], 1)]), contract[::-1])
    ego = drawn(render_bev_panel(GRID, forward_up=False))
    assert ego[96:104, 98:102].all() and not ego[:95].any() and not ego[106:].any()  # 4.08 m (8 px) along y = rows
    assert not ego[:, :97].any() and not ego[:, 103:].any()  # 1.73 m (3.4 px) along x = columns
    with pytest.raises(ValueError, match=r'masks must be \[4, H, W\] = \[4, 50, 50\]'):
        draw_map(GRID.blank(), np.zeros((4, 25, 25), dtype=bool), GRID)


def test_track_colours_are_stable_and_distinct():
    colours = [track_colour(i) for i in range(24)]
    assert len(set(colours)) == 24 and colours == [track_colour(i) for i in range(24)]
    assert all(0 <= c <= 255 for colour in colours for c in colour)


def pinhole_lidar2img(focal=100.0, cx=80.0, cy=48.0):
    """A camera at the LiDAR origin looking along +y: x_cam = x, y_cam = -z, z_cam = y."""
    lidar2cam = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
    intrinsic = np.eye(4)
    intrinsic[:3, :3] = [[focal, 0, cx], [0, focal, cy], [0, 0, 1]]
    return intrinsic @ lidar2cam


def test_camera_projection_draws_box_corners_and_skips_boxes_behind():
    img = np.zeros((96, 160, 3), dtype=np.uint8)
    box = np.array([[0.0, 10.0, -1.0, 2.0, 2.0, 2.0, 0.0]])  # x in [-1, 1], y in [9, 11], z in [-1, 1]
    draw_camera_boxes(img, box, pinhole_lidar2img(), [(0, 0, 255)])
    for x, z in ((-1, -1), (1, -1), (-1, 1), (1, 1)):  # near face corners at depth 9
        u, v = 80 + 100 * x / 9, 48 - 100 * z / 9
        assert img[int(round(v)) - 1:int(round(v)) + 2, int(round(u)) - 1:int(round(u)) + 2, 2].max() > 0
    assert img[48, 80].max() == 0  # face centre stays empty
    behind = np.zeros_like(img)
    draw_camera_boxes(behind, np.array([[0.0, -10.0, -1.0, 2.0, 2.0, 2.0, 0.0]]), pinhole_lidar2img(),
                      [(0, 0, 255)])
    assert behind.max() == 0


def make_sample(with_preds=True):
    sample = Det3DDataSample()
    sample.gt_instances_3d = InstanceData(
        bboxes_3d=LiDARInstance3DBoxes(torch.tensor([[5.0, 8.0, -1.5, 4.0, 2.0, 1.5, 0.2, 0.0, 0.0]]), box_dim=9),
        labels_3d=torch.tensor([0]), instance_ids=torch.tensor([42]))
    masks = torch.zeros(2, 50, 50, dtype=torch.uint8)
    masks[0, 10, :] = 1
    masks[1, 20:30, 20:30] = 1
    sample.gt_map_instances = InstanceData(labels=torch.tensor([0, 3]), bboxes=torch.zeros(2, 4), masks=masks)
    if with_preds:
        sample.pred_instances_3d = InstanceData(
            bboxes_3d=LiDARInstance3DBoxes(torch.tensor([[5.0, 8.0, -1.5, 4.0, 2.0, 1.5, 0.2, 0.0, 0.0],
                                                         [-9.0, 3.0, -1.5, 4.0, 2.0, 1.5, 1.0, 0.0, 0.0]]),
                                           box_dim=9),
            scores_3d=torch.tensor([0.9, 0.2]), labels_3d=torch.tensor([0, 0]), instance_ids=torch.tensor([3, 7]))
        sample.pred_map = dict(masks=torch.zeros(4, 50, 50, dtype=torch.bool))
    sample.set_metainfo(dict(token='tok', scene_name='scene-0001', location='boston-seaport', frame_idx=4,
                             lidar2img=np.stack([pinhole_lidar2img()] * 6), img_shape=(96, 160)))
    return sample


def test_frame_record_reads_samples_and_dicts_alike_and_renders():
    sample = make_sample()
    record = frame_record(sample, score_thr=0.5)
    assert record.pred_ids.tolist() == [3] and record.pred_scores.tolist() == pytest.approx([0.9])
    assert record.gt_ids.tolist() == [42] and record.gt_boxes.shape == (1, 9) and record.frame_idx == 4
    assert record.gt_masks.shape == (4, 50, 50) and record.gt_masks[0, 10].all() and record.gt_masks[3].sum() == 100
    assert not record.gt_masks[1].any() and record.pred_masks.dtype == bool
    from_dict = frame_record(sample.to_dict(), score_thr=0.5)
    np.testing.assert_array_equal(from_dict.pred_boxes, record.pred_boxes)
    grid = record_grid(record, PC_RANGE, scale=4)
    assert grid.canvas_hw == (50, 50)
    images = [np.full((96, 160, 3), 50, dtype=np.uint8)] * 6
    image = render_frame(record, grid, images)
    np.testing.assert_array_equal(image, render_frame(from_dict, grid, images))
    assert image.shape == (200 + 22 + 162, 404, 3)  # two panels + gap, legend, 2 x 3 cameras scaled to 404 wide
    empty = frame_record(make_sample(with_preds=False))
    assert empty.pred_boxes.shape == (0, 9) and empty.pred_masks is None
    assert render_frame(empty, record_grid(empty, PC_RANGE, scale=4)).shape == (222, 404, 3)
    pred_only = render_frame(record, grid, draw_gt=False)  # one panel: the right half of the pair
    assert pred_only.shape == (222, 200, 3)
    np.testing.assert_array_equal(pred_only[:200], render_frame(record, grid)[:200, 204:])
    with pytest.raises(ValueError, match='nothing to draw'):
        render_frame(record, grid, draw_gt=False, draw_pred=False)
    with pytest.raises(KeyError, match='token'):
        frame_record({'pred_map': {}})
