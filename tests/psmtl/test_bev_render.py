"""BEV rendering of the PS-MTL baselines: exact values of known boxes and masks, max rule, gradients, rasters."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from projects.nexusflow.models.psmtl import (BEVCanvas, MapRaster, TrackRaster, canvas_from_samples,
                                             render_box_occupancy, render_centre_heatmap, semantic_masks)

# 8 rows x 10 columns over x in [-5, 5], y in [-2, 6]: 1 m cells, cell (i, j) centred at (j - 4.5, i - 1.5)
CANVAS = BEVCanvas.from_range((-5.0, -2.0, -3.0, 5.0, 6.0, 3.0), (8, 10))
RANGE = (-5.0, -2.0, -3.0, 5.0, 6.0, 3.0)


def cell_centres(canvas=CANVAS):
    """``[H, W, 2]`` (x, y) metres of every cell centre, written independently of the renderer."""
    dx, dy = canvas.cell_size
    ys = canvas.y_min + (torch.arange(canvas.height, dtype=torch.float64) + 0.5) * dy
    xs = canvas.x_min + (torch.arange(canvas.width, dtype=torch.float64) + 0.5) * dx
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([grid_x, grid_y], -1)


def brute_heatmap(centre, score, sigma):
    dist2 = ((cell_centres() - torch.tensor(centre, dtype=torch.float64)) ** 2).sum(-1)
    return score * torch.exp(-dist2 / (2 * sigma ** 2)) * (dist2 <= 9 * sigma ** 2)


def test_canvas_geometry_follows_the_readme_grid():
    assert CANVAS.cell_size == (1.0, 1.0)
    cells = CANVAS.to_cells(torch.tensor([[-4.5, -1.5], [4.5, 5.5], [0.0, 2.0]]))
    assert cells.tolist() == [[0.0, 0.0], [9.0, 7.0], [4.5, 3.5]]
    with pytest.raises(ValueError, match='x_max > x_min'):
        BEVCanvas.from_range((1.0, 0.0, 0.0, 1.0), (4, 4))


def test_centre_heatmap_of_a_known_object_is_exact():
    centre = (0.5, 2.5)  # the centre of cell (4, 5)
    scores = torch.tensor([[[0.0, 0.8]]])
    heat = render_centre_heatmap(torch.tensor([[centre]]), scores, torch.tensor([[True]]), CANVAS, sigma=1.0)
    assert heat.shape == (1, 2, 8, 10)
    assert heat[0, 0].abs().max() == 0
    assert heat[0, 1, 4, 5] == pytest.approx(0.8, abs=1e-7)
    assert heat[0, 1, 4, 6] == pytest.approx(0.8 * math.exp(-0.5), abs=1e-7)
    torch.testing.assert_close(heat[0, 1].double(), brute_heatmap(centre, 0.8, 1.0), atol=1e-7, rtol=0)
    off_grid = (-1.3, 0.2)
    heat = render_centre_heatmap(torch.tensor([[off_grid]]), scores, torch.tensor([[True]]), CANVAS, sigma=1.5)
    torch.testing.assert_close(heat[0, 1].double(), brute_heatmap(off_grid, 0.8, 1.5), atol=1e-7, rtol=0)


def test_heatmap_takes_the_maximum_and_skips_invalid_and_outside_objects():
    centres = torch.tensor([[[0.5, 2.5], [1.5, 2.5], [-3.5, 0.5], [40.0, 40.0]]])
    scores = torch.tensor([[[1.0], [0.5], [1.0], [1.0]]])
    valid = torch.tensor([[True, True, False, True]])
    heat = render_centre_heatmap(centres, scores, valid, CANVAS, sigma=1.0)[0, 0].double()
    expected = torch.maximum(brute_heatmap((0.5, 2.5), 1.0, 1.0), brute_heatmap((1.5, 2.5), 0.5, 1.0))
    torch.testing.assert_close(heat, expected, atol=1e-7, rtol=0)
    edge = render_centre_heatmap(torch.tensor([[[5.2, 2.5]]]), torch.ones(1, 1, 1), torch.tensor([[True]]),
                                 CANVAS)[0, 0].double()
    torch.testing.assert_close(edge, brute_heatmap((5.2, 2.5), 1.0, 1.0), atol=1e-6, rtol=0)


def test_box_occupancy_matches_the_closed_form():
    cx, cy, length, width, yaw, tau = 0.3, 2.1, 4.0, 2.0, 0.6, 0.25
    box = torch.tensor([[[cx, cy, length, width, 2 * math.sin(yaw), 2 * math.cos(yaw)]]])  # unnormalised sin/cos
    occ = render_box_occupancy(box, torch.tensor([[0.9]]), torch.tensor([[True]]), CANVAS, softness=tau,
                               max_extent=6.0)[0, 0].double()
    rel = cell_centres() - torch.tensor([cx, cy], dtype=torch.float64)
    along = math.cos(yaw) * rel[..., 0] + math.sin(yaw) * rel[..., 1]
    across = -math.sin(yaw) * rel[..., 0] + math.cos(yaw) * rel[..., 1]
    expected = 0.9 * torch.sigmoid((length / 2 - along.abs()) / tau) * torch.sigmoid((width / 2 - across.abs()) / tau)
    torch.testing.assert_close(occ, expected, atol=1e-6, rtol=0)
    assert occ.max() > 0.85 and occ[0, 0] < 1e-6


def test_rendering_is_differentiable_in_centres_sizes_and_scores():
    centres = torch.tensor([[[0.3, 2.2]]], dtype=torch.float64, requires_grad=True)
    scores = torch.tensor([[[0.7, 0.2]]], dtype=torch.float64, requires_grad=True)
    valid = torch.tensor([[True]])
    assert torch.autograd.gradcheck(lambda c, s: render_centre_heatmap(c, s, valid, CANVAS), (centres, scores))
    boxes = torch.tensor([[[0.3, 2.2, 3.0, 1.5, 0.3, 0.9]]], dtype=torch.float64, requires_grad=True)
    obj = torch.tensor([[0.8]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda b, s: render_box_occupancy(b, s, valid, CANVAS), (boxes, obj))


def test_semantic_masks_unite_instances_per_class():
    masks = torch.zeros(3, 4, 5, dtype=torch.uint8)
    masks[0, 1], masks[1, 3], masks[2, :, 2] = 1, 1, 1
    out = semantic_masks(torch.tensor([0, 0, 3]), masks, 4)
    assert out.dtype == torch.float32 and out.shape == (4, 4, 5)
    assert torch.equal(out[0], (masks[0] | masks[1]).float()) and torch.equal(out[3], masks[2].float())
    assert out[1:3].abs().max() == 0
    assert semantic_masks(torch.zeros(0, dtype=torch.long), masks[:0], 4).abs().max() == 0


def track_sample(labelled=True, requires_grad=False):
    boxes = torch.tensor([[0.5, 2.5, -1.0, 4.0, 2.0, 1.5, 0.0, 1.0, 0.0],
                          [-3.5, 0.5, -1.0, 0.8, 0.8, 1.7, 0.3, 0.0, 0.0]], requires_grad=requires_grad)
    sample = Det3DDataSample(metainfo=dict(has_track_gt=labelled))
    sample.gt_instances_3d = InstanceData(bboxes_3d=LiDARInstance3DBoxes(boxes, box_dim=9),
                                          labels_3d=torch.tensor([0, 8]), instance_ids=torch.tensor([1, 2]))
    return sample, boxes


def test_track_raster_labels_are_exact_and_carry_no_graph():
    raster = TrackRaster(num_classes=10, point_cloud_range=RANGE, sigma=1.0, with_occupancy=True)
    assert raster.channels == 11
    sample, boxes = track_sample(requires_grad=True)
    labels = raster.labels([sample, track_sample(labelled=False)[0]], (8, 10), torch.device('cpu'))
    assert labels.shape == (2, 11, 8, 10) and not labels.requires_grad
    torch.testing.assert_close(labels[0, 0].double(), brute_heatmap((0.5, 2.5), 1.0, 1.0), atol=1e-7, rtol=0)
    torch.testing.assert_close(labels[0, 8].double(), brute_heatmap((-3.5, 0.5), 1.0, 1.0), atol=1e-7, rtol=0)
    assert labels[0, [1, 2, 3, 4, 5, 6, 7, 9]].abs().max() == 0
    assert labels[0, 10, 4, 5] > 0.9 and labels[1].abs().max() == 0
    assert raster.labelled([sample, track_sample(labelled=False)[0]], torch.device('cpu')).tolist() == [True, False]


def test_track_raster_predictions_match_labels_for_perfect_predictions():
    raster = TrackRaster(num_classes=10, point_cloud_range=RANGE)
    sample, boxes = track_sample()
    decoded = torch.cat([boxes[:, [0, 1, 2]], boxes[:, [3, 4, 5]], boxes[:, 6:7].sin(), boxes[:, 6:7].cos(),
                         boxes[:, 7:9]], 1)
    logits = torch.full((2, 10), -1e4)
    logits[0, 0] = logits[1, 8] = 1e4
    pad = torch.zeros(1, 1, 10)
    preds = dict(cls_logits=torch.cat([logits[None], pad - 1e4], 1), boxes=torch.cat([decoded[None], pad], 1),
                 padding_mask=torch.tensor([[False, False, True]]))
    torch.testing.assert_close(raster.predictions(preds, (8, 10)), raster.labels([sample], (8, 10), 'cpu'))
    with pytest.raises(ValueError, match='num_classes=10'):
        raster.predictions(dict(preds, cls_logits=preds['cls_logits'][..., :3]), (8, 10))


def map_sample(canvas=(8, 10), labelled=True):
    masks = torch.zeros(2, *canvas, dtype=torch.uint8)
    masks[0, 2], masks[1, :, 3:6] = 1, 1
    sample = Det3DDataSample(metainfo=dict(has_map_gt=labelled))
    sample.gt_map_instances = InstanceData(labels=torch.tensor([1, 3]), masks=masks,
                                           bboxes=torch.tensor([[0.0, 2.0, 10.0, 3.0], [3.0, 0.0, 6.0, 8.0]]))
    return sample


def test_map_raster_labels_predictions_and_canvas():
    raster = MapRaster(num_classes=4)
    samples = [map_sample(), map_sample(labelled=False)]
    assert canvas_from_samples(samples) == (8, 10)
    labels = raster.labels(samples, (8, 10), torch.device('cpu'))
    assert torch.equal(labels[0, 1], samples[0].gt_map_instances.masks[0].float())
    assert torch.equal(labels[0, 3], samples[0].gt_map_instances.masks[1].float())
    assert labels[0, [0, 2]].abs().max() == 0 and labels[1].abs().max() == 0
    probs = torch.rand(2, 4, 4, 5)
    assert torch.equal(raster.predictions(dict(semantic=probs), (4, 5)), probs)
    assert raster.predictions(dict(semantic=probs), (8, 10)).shape == (2, 4, 8, 10)
    with pytest.raises(ValueError, match='canvases'):
        canvas_from_samples([map_sample(), map_sample(canvas=(4, 5))])
    with pytest.raises(ValueError, match=r'expects semantic \[B, 4, H, W\]'):
        raster.predictions(dict(semantic=probs[:, :3]), (4, 5))
