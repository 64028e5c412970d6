"""Parts of the map head on hand-made inputs: deformable attention, box refinement, targets, losses, matchers and
the panoptic post-processing, each against values worked out by hand."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet3d.registry import TASK_UTILS
from mmdet3d.structures import Det3DDataSample
from projects.nexusflow.models.layers import MSDeformAttn
from projects.nexusflow.models.uniad.map import (MapCriterion, MapEncoder, bev_reference_points,
                                                 mask_quality, panoptic_postprocess, refine_boxes, sample_targets)
from projects.nexusflow.models.uniad.map.losses import DEFAULT_FILTER_ASSIGNER, DEFAULT_MASK_ASSIGNER


def identity_attention(num_points=1, offset=(0.5, 0.0)):
    """One head, one point at ``offset`` cells (point references), identity value/output projections."""
    attn = MSDeformAttn(embed_dims=4, num_heads=1, num_levels=1, num_points=num_points)
    with torch.no_grad():
        for layer in (attn.value_proj, attn.output_proj):
            layer.weight.copy_(torch.eye(4))
            layer.bias.zero_()
        attn.sampling_offsets.weight.zero_()
        attn.sampling_offsets.bias.copy_(torch.tensor(offset * num_points))
        attn.attention_weights.weight.zero_()
        attn.attention_weights.bias.zero_()
    return attn


def test_deformable_attention_samples_bilinearly_between_cells():
    h, w = 3, 4
    grid = (10 * torch.arange(h)[:, None] + torch.arange(w)[None]).float()  # value 10 i + j at cell (i, j)
    value = grid.reshape(1, h * w, 1).expand(1, h * w, 4)
    shapes = torch.tensor([[h, w]])
    start = torch.tensor([0])
    attn = identity_attention()
    points = torch.tensor([[[[1.5 / w, 1.5 / h]], [[0.5 / w, 2.5 / h]]]])  # centres of cells (1, 1) and (2, 0)
    out = attn(torch.zeros(1, 2, 4), value, points, shapes, start)
    assert torch.allclose(out, torch.tensor([11.5, 20.5])[None, :, None].expand(1, 2, 4), atol=1e-5)
    # box references scale the offset by 0.5 * w / num_points: a box 2 cells wide moves it by half a cell too
    boxes = torch.cat([points, torch.full_like(points, 2.0 / w)], -1)
    assert torch.allclose(attn(torch.zeros(1, 2, 4), value, boxes, shapes, start), out, atol=1e-5)


def test_deformable_attention_rejects_mismatched_shapes():
    attn = MSDeformAttn(embed_dims=8, num_heads=2, num_levels=1, num_points=2)
    with pytest.raises(ValueError, match='reference_points'):
        attn(torch.zeros(1, 3, 8), torch.zeros(1, 6, 8), torch.zeros(1, 3, 2), torch.tensor([[2, 3]]),
             torch.tensor([0]))
    with pytest.raises(ValueError, match='divisible'):
        MSDeformAttn(embed_dims=10, num_heads=4)


def test_refine_boxes_and_reference_points_are_row_major():
    assert torch.allclose(refine_boxes(torch.zeros(4), torch.tensor([0.3, 0.6])), torch.tensor([0.3, 0.6, 0.5, 0.5]))
    box = torch.tensor([0.2, 0.7, 0.1, 0.4])
    assert torch.allclose(refine_boxes(torch.zeros(4), box), box, atol=1e-6)
    ref = bev_reference_points(2, 3, torch.device('cpu'))[0, :, 0]
    assert torch.allclose(ref[1 * 3 + 2], torch.tensor([2.5 / 3, 1.5 / 2]))  # row 1, column 2


def test_encoder_keeps_samples_independent():
    torch.manual_seed(0)
    encoder = MapEncoder(num_layers=2, embed_dims=16, num_heads=2, num_points=2, ffn_dims=32, dropout=0.0)
    bev, pos = torch.randn(2, 12, 16), torch.randn(2, 12, 16)
    both = encoder(bev, pos, (3, 4))
    alone = torch.cat([encoder(bev[i:i + 1], pos[i:i + 1], (3, 4)) for i in range(2)])
    assert both.shape == (2, 12, 16)
    assert torch.allclose(both, alone, atol=1e-5)


def make_sample(labels, masks, labelled=True):
    boxes = []
    for mask in masks:
        ys, xs = mask.nonzero(as_tuple=True)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0])
    sample = Det3DDataSample(metainfo=dict(has_map_gt=labelled))
    sample.gt_map_instances = InstanceData(labels=torch.tensor(labels), masks=masks.to(torch.uint8),
                                           bboxes=torch.tensor(boxes, dtype=torch.float32).view(-1, 4))
    return sample


def test_targets_split_things_and_stuff_and_check_the_contract():
    masks = torch.zeros(3, 4, 5)
    masks[0, 1] = 1
    masks[1, 2:, 2:] = 1
    gt = sample_targets(make_sample([0, 1, 3], masks), 0, 3, 1, (4, 5), torch.device('cpu'))
    assert gt.labelled and gt.thing_labels.tolist() == [0, 1] and gt.canvas_hw == (4, 5)
    assert gt.stuff_present.tolist() == [False]  # an empty drivable mask counts as absent
    assert gt.thing_bboxes[1].tolist() == [2.0, 2.0, 5.0, 4.0]
    unlabelled = sample_targets(make_sample([0, 1, 3], masks, labelled=False), 0, 3, 1, (4, 5), torch.device('cpu'))
    assert not unlabelled.labelled and unlabelled.num_things == 0 and unlabelled.stuff_masks.sum() == 0
    with pytest.raises(ValueError, match=r'\[0, 4\)'):
        sample_targets(make_sample([0, 5, 3], masks), 0, 3, 1, (4, 5), torch.device('cpu'))
    with pytest.raises(ValueError, match='one entry per stuff class'):
        sample_targets(make_sample([0, 3, 3], masks), 0, 3, 1, (4, 5), torch.device('cpu'))
    with pytest.raises(KeyError, match='gt_map_instances'):
        sample_targets(Det3DDataSample(metainfo=dict(has_map_gt=True)), 0, 3, 1, (4, 5), torch.device('cpu'))


def test_dice_loss_on_hand_made_masks():
    criterion = MapCriterion()
    logits = torch.tensor([[50.0, 50.0, -50.0, -50.0], [50.0, 50.0, 50.0, 50.0]]).view(2, 2, 2)
    targets = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).view(2, 2, 2)
    # mask 0: 1 - 2 * 1 / (2 + 2) = 0.5; mask 1: 0; weight 2.0, normalised by 2 GTs
    loss = criterion.loss_mask(logits, targets, torch.ones(2), avg_factor=2.0)
    assert loss.item() == pytest.approx(2.0 * 0.5 / 2, abs=1e-5)
    unweighted_first = criterion.loss_mask(logits, targets, torch.tensor([0.0, 1.0]), avg_factor=1.0)
    assert unweighted_first.item() == pytest.approx(0.0, abs=1e-5)


def test_box_losses_on_hand_made_queries():
    masks = torch.zeros(2, 10, 20)
    masks[0, 2:4, 4:12] = 1  # divider box x 4..12, y 2..4 on a 10 x 20 canvas
    gt = sample_targets(make_sample([0, 3], masks), 0, 3, 1, (10, 20), torch.device('cpu'))
    target = torch.tensor([8.0 / 20, 3.0 / 10, 8.0 / 20, 2.0 / 10])  # cx, cy, w, h
    boxes = torch.stack([target, torch.tensor([0.8, 0.8, 0.1, 0.1])])[None]
    criterion = MapCriterion()
    losses = criterion.decoder_layer_losses(torch.zeros(1, 2, 3), boxes, [gt], num_pos=1.0)
    # all logits 0: 1 positive entry 0.25 * 0.5^2 * ln 2 and 5 negatives 0.75 * 0.5^2 * ln 2 sum to ln 2; weight 2.0
    assert losses['loss_cls'].item() == pytest.approx(2.0 * math.log(2), rel=1e-5)
    assert losses['loss_bbox'].item() == pytest.approx(0.0, abs=1e-6)
    assert losses['loss_iou'].item() == pytest.approx(0.0, abs=1e-5)
    shifted = boxes.clone()
    shifted[0, 0, 0] += 0.1
    assert criterion.decoder_layer_losses(torch.zeros(1, 2, 3), shifted, [gt], 1.0)['loss_bbox'].item() == \
        pytest.approx(5.0 * 0.1, rel=1e-5)


def test_filter_assigner_takes_up_to_max_pos_queries_per_gt():
    assigner = TASK_UTILS.build(dict(type='UniADFilterHungarianAssigner', max_pos=2,
                                     match_costs=[dict(type='mmdet.BBoxL1Cost', weight=1.0)]))
    gt = InstanceData(labels=torch.tensor([0, 2]), bboxes=torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]))
    preds = InstanceData(scores=torch.zeros(5, 3), bboxes=torch.tensor([
        [21.0, 21, 31, 31], [0, 0, 10, 10], [1, 1, 11, 11], [35, 0, 40, 5], [20, 20, 30, 30]]))
    result = assigner.assign(preds, gt, img_meta=dict(img_shape=(40, 40)))
    assert result.gt_inds.tolist() == [0, 1, 0, 0, 2]  # first round: exact boxes
    assert result.labels.tolist() == [-1, 0, -1, -1, 2]
    assert result.get_extra_property('selected_inds').tolist() == [0, 1, 2, 4]  # second round: the near ones
    three = assigner.assign(preds[:3], gt, img_meta=dict(img_shape=(40, 40)))
    assert three.get_extra_property('selected_inds').tolist() == [0, 1, 2]  # the queries ran out
    empty = assigner.assign(preds, gt[:0], img_meta=dict(img_shape=(40, 40)))
    assert empty.gt_inds.tolist() == [0] * 5 and empty.get_extra_property('selected_inds').numel() == 0


def test_filter_assigner_first_round_is_the_plain_hungarian_matching():
    torch.manual_seed(0)
    filter_cfg = dict(DEFAULT_FILTER_ASSIGNER)
    plain = TASK_UTILS.build(dict(type='mmdet.HungarianAssigner', match_costs=filter_cfg['match_costs']))
    assigner = TASK_UTILS.build(filter_cfg)
    xy = torch.rand(20, 2) * 30
    preds = InstanceData(scores=torch.randn(20, 3), bboxes=torch.cat([xy, xy + 5 + torch.rand(20, 2) * 5], 1))
    gxy = torch.rand(4, 2) * 30
    gt = InstanceData(labels=torch.tensor([0, 1, 2, 0]), bboxes=torch.cat([gxy, gxy + 6], 1))
    result = assigner.assign(preds, gt, img_meta=dict(img_shape=(40, 40)))
    assert torch.equal(result.gt_inds, plain.assign(preds, gt, img_meta=dict(img_shape=(40, 40))).gt_inds)
    assert result.get_extra_property('selected_inds').numel() == 12


def test_mask_assigner_separates_identical_boxes_by_their_masks():
    assigner = TASK_UTILS.build(DEFAULT_MASK_ASSIGNER)
    gt_masks = torch.zeros(2, 4, 4)
    gt_masks[0, :2] = 1
    gt_masks[1, 2:] = 1
    gt = InstanceData(labels=torch.tensor([0, 0]), bboxes=torch.tensor([[0.0, 0, 4, 4]] * 2), masks=gt_masks)
    preds = InstanceData(scores=torch.zeros(2, 3), bboxes=torch.tensor([[0.0, 0, 4, 4]] * 2),
                         masks=torch.stack([gt_masks[1], gt_masks[0]]) * 20 - 10)  # logits
    assert assigner.assign(preds, gt, img_meta=dict(img_shape=(4, 4))).gt_inds.tolist() == [2, 1]


def band(rows, cols, value, shape=(6, 8)):
    probs = torch.zeros(shape)
    probs[rows, cols] = value
    return probs


def test_mask_quality_is_the_mean_probability_inside_the_mask():
    probs = torch.stack([band(1, slice(None), 0.9), band(1, slice(None), 0.2)])
    assert mask_quality(probs, 0.5).tolist() == pytest.approx([0.9 * 8 / 9, 0.0])


def test_panoptic_postprocess_respects_the_thresholds():
    row1, row2_left = band(1, slice(None), 0.9), band(2, slice(0, 5), 0.9)
    crossing = band(slice(3, 5), slice(0, 4), 0.9)
    boundary = row2_left + band(1, slice(0, 3), 0.9)  # 3 of its 8 pixels overlap the divider: 0.375 <= 0.4
    probs = torch.stack([row1, row1, crossing, boundary, torch.full((6, 8), 0.2)])
    scores = torch.tensor([0.8, 0.7, 0.1, 0.6, 0.9])
    labels = torch.tensor([0, 0, 1, 2, 0])
    quality2 = (0.9 * 8 / 9) ** 2
    drivable = band(slice(1, 6), slice(None), 0.8)[None]
    out = panoptic_postprocess(probs, scores, labels, drivable, torch.tensor([0.9]), 3)
    # kept: the divider (0.8 q^2), then the boundary (0.6 q^2); the duplicate overlaps 100 %, the crossing
    # scores 0.1 q^2 < 0.1 and the last candidate has an empty mask
    assert out['thing_labels'].tolist() == [0, 2]
    assert out['thing_scores'].tolist() == pytest.approx([0.8 * quality2, 0.6 * quality2])
    assert torch.equal(out['masks'][0], row1 > 0) and not out['masks'][1].any()
    assert torch.equal(out['masks'][2], row2_left > 0)  # only the free pixels of the boundary are pasted
    assert torch.equal(out['masks'][3], drivable[0] > 0)  # semantic drivable: the full mask, as in UniAD
    assert out['drivable_score'] == pytest.approx(0.9 * (0.8 * 40 / 41) ** 2)
    expected = (row1 > 0).long() + 2 * (row2_left > 0).long()  # drivable overlaps things by 13/40 > 0.2
    assert torch.equal(out['panoptic'], expected)
    free = band(slice(3, 6), slice(None), 0.8)[None]
    assert (panoptic_postprocess(probs, scores, labels, free, torch.tensor([0.9]), 3)['panoptic'] == 3).sum() == 24
    unsure = panoptic_postprocess(probs, scores, labels, free, torch.tensor([0.1]), 3)
    assert (unsure['panoptic'] == 3).sum() == 0 and unsure['masks'][3].sum() == 24
