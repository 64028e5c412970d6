"""Behaviour of ``UniADMapHead``: shapes and the encoder tap, loss keys, partial labels, and an overfit run."""
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample
from projects.nexusflow.models.uniad.map import UniADMapHead  # noqa: F401  (registers the modules)

H, W, C = 16, 20, 32  # non-square, to catch row/column swaps
LOSS_KEYS = {'loss_cls', 'loss_bbox', 'loss_iou', 'd0.loss_cls', 'd0.loss_bbox', 'd0.loss_iou',
             'loss_mask_things', 'd0.loss_mask_things_f', 'd1.loss_mask_things_f',
             'loss_mask_stuff', 'd0.loss_mask_stuff_f', 'd1.loss_mask_stuff_f',
             'd0.loss_cls_stuff_f', 'd1.loss_cls_stuff_f'}


def build_head(bev_hw=(H, W), seed=0, **overrides):
    cfg = dict(type='UniADMapHead', bev_h=bev_hw[0], bev_w=bev_hw[1], embed_dims=C, num_query=20,
               transformer=dict(num_encoder_layers=1, num_decoder_layers=2, num_heads=4, num_points=4,
                                ffn_dims=2 * C, dropout=0.0),
               thing_mask_head=dict(num_layers=2, num_heads=4),
               stuff_mask_head=dict(num_layers=2, num_heads=4, self_attn=True))
    cfg.update(overrides)
    torch.manual_seed(seed)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def road_sample(canvas=(H, W), labelled=True, divider_rows=(4, 10), crossing=(slice(6, 9), slice(13, 17)),
                drivable_rows=slice(2, 13)):
    """Two horizontal dividers, one crossing and a drivable band; pixel boxes from the masks."""
    masks, labels = [], []
    for row in divider_rows:
        masks.append(torch.zeros(canvas, dtype=torch.uint8))
        masks[-1][row] = 1
        labels.append(0)
    masks.append(torch.zeros(canvas, dtype=torch.uint8))
    masks[-1][crossing] = 1
    labels.append(1)
    masks.append(torch.zeros(canvas, dtype=torch.uint8))
    masks[-1][drivable_rows] = 1
    labels.append(3)
    boxes = []
    for mask in masks:
        ys, xs = mask.nonzero(as_tuple=True)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    sample = Det3DDataSample(metainfo=dict(has_map_gt=labelled))
    sample.gt_map_instances = InstanceData(labels=torch.tensor(labels), masks=torch.stack(masks),
                                           bboxes=torch.tensor(boxes, dtype=torch.float32))
    return sample


def test_forward_shapes_and_encoder_tap():
    head = build_head()
    taps = []
    handle = head.transformer.encoder.register_forward_hook(lambda module, args, out: taps.append(out))
    bev = torch.randn(2, H * W, C)
    memory, states, cls_logits, boxes = head(bev)
    handle.remove()
    assert memory.shape == (2, H * W, C) and len(taps) == 1 and torch.equal(taps[0], memory)
    assert states.shape == (2, 2, 20, C) and cls_logits.shape == (2, 2, 20, 3) and boxes.shape == (2, 2, 20, 4)
    assert bool(((boxes > 0) & (boxes < 1)).all())


@pytest.mark.parametrize('batch,canvas', [(1, None), (2, (32, 40))])
def test_predict_outputs(batch, canvas):
    head = build_head(canvas_size=canvas, test_cfg=dict(quality_threshold_things=0.0)).eval()  # keep every thing
    out_hw = canvas or (H, W)
    with torch.no_grad():
        results = head.predict(torch.randn(batch, H * W, C), [road_sample()] * batch)
    assert len(results) == batch
    for result in results:
        n = len(result['thing_labels'])
        assert n > 0 and result['thing_labels'].max() < 3
        assert result['masks'].shape == (4, *out_hw) and result['masks'].dtype == torch.bool
        assert result['thing_masks'].shape == (n, *out_hw) and result['thing_scores'].shape == (n, )
        assert result['panoptic'].shape == out_hw and isinstance(result['drivable_score'], float)
        # things never overlap and the thing channels are their union per class
        assert int(result['thing_masks'].long().sum(0).max()) <= 1
        assert torch.equal(result['masks'][:3].any(0), result['thing_masks'].any(0))


def test_loss_keys_values_and_determinism():
    losses = build_head().loss(torch.randn(2, H * W, C, generator=torch.Generator().manual_seed(1)),
                               [road_sample(), road_sample(divider_rows=(3, 11))])
    assert set(losses) == LOSS_KEYS
    assert all(value.dim() == 0 and torch.isfinite(value) and value > 0 for value in losses.values())
    again = build_head().loss(torch.randn(2, H * W, C, generator=torch.Generator().manual_seed(1)),
                              [road_sample(), road_sample(divider_rows=(3, 11))])
    assert all(torch.equal(losses[key], again[key]) for key in LOSS_KEYS)


def test_gt_on_a_larger_canvas_gives_the_same_box_losses():
    """Boxes are normalised by the GT canvas: the same map drawn at twice the resolution matches identically."""
    bev = torch.randn(1, H * W, C, generator=torch.Generator().manual_seed(2))
    small = road_sample()
    large = road_sample()
    gt = large.gt_map_instances
    large.gt_map_instances = InstanceData(labels=gt.labels, bboxes=gt.bboxes * 2,
                                          masks=gt.masks.repeat_interleave(2, 1).repeat_interleave(2, 2))
    head = build_head()
    losses_small, losses_large = head.loss(bev, [small]), head.loss(bev, [large])
    for key in ('loss_cls', 'loss_bbox', 'loss_iou', 'd0.loss_cls', 'd0.loss_bbox', 'd0.loss_iou'):
        assert torch.allclose(losses_small[key], losses_large[key], rtol=1e-5), key
    assert torch.isfinite(losses_large['loss_mask_things']) and torch.isfinite(losses_large['loss_mask_stuff'])


def test_unlabelled_sample_contributes_exactly_zero():
    head = build_head()
    bev = torch.randn(2, H * W, C, requires_grad=True)
    mixed = head.loss(bev, [road_sample(), road_sample(divider_rows=(1, 14), labelled=False)])
    sum(mixed.values()).backward()
    assert bool((bev.grad[1] == 0).all()) and bev.grad[0].abs().sum() > 0
    alone = head.loss(bev[:1].detach(), [road_sample()])
    for key in LOSS_KEYS:
        assert torch.allclose(mixed[key], alone[key], rtol=1e-5, atol=1e-7), key


def test_all_unlabelled_gives_zero_losses_and_zero_gradients_everywhere():
    head = build_head()
    bev = torch.randn(2, H * W, C, requires_grad=True)
    losses = head.loss(bev, [road_sample(labelled=False)] * 2)
    assert set(losses) == LOSS_KEYS and all(value.item() == 0.0 for value in losses.values())
    sum(losses.values()).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None, name  # DDP must see every parameter
        assert bool((param.grad == 0).all()), name
    assert bool((bev.grad == 0).all())


def test_bad_inputs_raise_with_the_expected_values():
    head = build_head()
    with pytest.raises(ValueError, match=r'\[B, 320, 32\]'):
        head.loss(torch.randn(1, 300, C), [road_sample()])
    with pytest.raises(ValueError, match='2 BEV maps'):
        head.predict(torch.randn(2, H * W, C), [road_sample()])
    with pytest.raises(ValueError, match='embed_dims'):
        build_head(transformer=dict(embed_dims=64))
    with pytest.raises(KeyError, match='mask_thr'):
        build_head(test_cfg=dict(mask_thr=0.3))


def mask_iou(pred, gt):
    return float((pred & gt).sum()) / max(1.0, float((pred | gt).sum()))


def test_overfit_segments_a_fixed_map():
    """A learnable BEV and the head fit one 25 x 25 map: drivable band, two dividers and a crossing."""
    size = 25
    head = build_head(bev_hw=(size, size))
    sample = road_sample(canvas=(size, size), divider_rows=(9, 15), crossing=(slice(10, 14), slice(17, 22)),
                         drivable_rows=slice(5, 20))
    bev = torch.nn.Parameter(torch.randn(1, size * size, C, generator=torch.Generator().manual_seed(0)))
    optimizer = torch.optim.Adam(list(head.parameters()) + [bev], lr=2e-3)
    totals = []
    for _ in range(250):
        total = sum(head.loss(bev, [sample]).values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert sum(totals[-10:]) / 10 < totals[0] / 10
    with torch.no_grad():
        result = head.eval().predict(bev, [sample])[0]
    gt = sample.gt_map_instances.masks.bool()
    assert mask_iou(result['masks'][3], gt[3]) > 0.9  # drivable
    assert mask_iou(result['masks'][0], gt[0] | gt[1]) > 0.5  # dividers
    assert sorted(result['thing_labels'].tolist()) == [0, 0, 1]
