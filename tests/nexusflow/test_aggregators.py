"""Aggregators: exact sampling through the shared op, locality, set invariances, masks, batch consistency."""
import pytest
import torch
from torch import nn

import projects.nexusflow.models.layers.deformable_attention as deform_module
from mmdet3d.registry import MODELS
from projects.nexusflow.models.layers import MSDeformAttn
from projects.nexusflow.core import TapOutput, build_tap_adapter
from projects.nexusflow.models.nexusflow import DeformableAggregator, MLPAggregator, QuerySetAggregator
from projects.nexusflow.models.ops import single_level_shapes

C, D = 8, 12


def bev_tap(feats, height, width):
    return build_tap_adapter(dict(module='m', kind='bev', bev_shape=(height, width)))[1](feats)


def set_tap(feats, points, mask=None):
    return TapOutput(feats, points, mask, None)


def all_params_get_grads(module, out):
    module.zero_grad()
    out.pow(2).sum().backward()
    return all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize('depth', [1, 3, 6])
def test_mlp_aggregator_depth_and_masked_mean(depth):
    torch.manual_seed(depth)
    agg = MLPAggregator(C, out_dim=D, depth=depth, hidden_dim=16)
    assert sum(isinstance(m, nn.Linear) for m in agg.modules()) == depth
    feats = torch.randn(2, 5, C)
    mask = torch.tensor([[False] * 5, [False, False, True, True, True]])
    out = agg(set_tap(feats, torch.rand(2, 5, 2), mask))
    expected = agg.mlp(torch.stack([feats[0].mean(0), feats[1, :2].mean(0)]))
    assert out.shape == (2, D) and torch.allclose(out, expected, atol=1e-6)


def test_deformable_attention_samples_the_reference_cell_exactly():
    """The aggregator's attention (a 5-channel tap read by 8-channel queries) samples its reference cell."""
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=C, num_heads=2, num_levels=1, num_points=1, value_dims=5)
    attn.init_weights()
    nn.init.zeros_(attn.sampling_offsets.bias)  # sample exactly at the reference point
    height, width = 3, 4
    shapes, start = single_level_shapes(height, width)
    value = torch.randn(1, height * width, 5)
    cell = (2, 1)  # row i, column j
    ref = torch.tensor([[[[(cell[1] + 0.5) / width, (cell[0] + 0.5) / height]]]])  # [B, Nq, levels, 2]
    out = attn(torch.randn(1, 1, C), value, ref, shapes, start)
    expected = attn.output_proj(attn.value_proj(value[0, cell[0] * width + cell[1]]))
    assert torch.allclose(out[0, 0], expected, atol=1e-5)
    half_way = ref + torch.tensor([0.5 / width, 0.0])  # between columns 1 and 2: bilinear mean
    out = attn(torch.randn(1, 1, C), value, half_way, shapes, start)
    mean_value = value[0, [cell[0] * width + 1, cell[0] * width + 2]].mean(0)
    assert torch.allclose(out[0, 0], attn.output_proj(attn.value_proj(mean_value)), atol=1e-5)


def test_deformable_aggregator_uses_the_shared_op(monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    original = deform_module.multi_scale_deformable_attn
    monkeypatch.setattr(deform_module, 'multi_scale_deformable_attn', spy)
    agg = DeformableAggregator(C, out_dim=D, num_queries=4, num_heads=2, num_points=2, num_layers=2)
    agg(bev_tap(torch.randn(2, 5 * 6, C), 5, 6))
    assert calls == [torch.Size([2, 30, 2, C // 2])] * 2


def test_deformable_aggregator_is_local_and_batch_consistent():
    torch.manual_seed(0)
    agg = DeformableAggregator(C, out_dim=D, num_queries=1, num_heads=2, num_points=1)
    nn.init.zeros_(agg.attentions[0].sampling_offsets.bias)  # one query sampling the map centre only
    height, width = 5, 5
    feats = torch.randn(2, height * width, C)
    out = agg(bev_tap(feats, height, width))
    far = feats.clone()
    far[:, 0] += 10.0  # the corner cell, away from the centre sample
    assert torch.equal(agg(bev_tap(far, height, width)), out)
    near = feats.clone()
    near[:, 2 * width + 2] += 10.0  # the centre cell
    assert (agg(bev_tap(near, height, width)) - out).abs().max() > 1e-2
    single = agg(bev_tap(feats[1:], height, width))
    assert torch.allclose(single[0], out[1], atol=1e-5)


def test_deformable_aggregator_on_feature_maps_and_masks():
    agg = DeformableAggregator(C, out_dim=D, num_queries=4, num_heads=2, num_points=2, pool='mean')
    fmap = torch.randn(3, C, 4, 6)
    tap = build_tap_adapter(dict(module='m', kind='feature_map'))[1](fmap)
    assert agg(tap).shape == (3, D)
    assert all_params_get_grads(agg, agg(tap)), 'every parameter must get a gradient (DDP without unused params)'
    mask = torch.zeros(3, 24, dtype=torch.bool)
    mask[:, 12:] = True
    masked_feats = tap.features.clone()
    masked_feats[:, 12:] = 99.0
    masked = agg(TapOutput(masked_feats, tap.positions, mask, tap.spatial_shape))
    zeroed = agg(TapOutput(torch.cat([tap.features[:, :12], torch.zeros(3, 12, C)], 1), tap.positions, mask,
                           tap.spatial_shape))
    assert torch.allclose(masked, zeroed, atol=1e-6)
    with pytest.raises(ValueError, match='needs a dense tap'):
        agg(set_tap(torch.randn(3, 7, C), torch.rand(3, 7, 2)))


def test_query_set_aggregator_invariances():
    torch.manual_seed(0)
    agg = QuerySetAggregator(C, out_dim=D, num_queries=4, num_heads=2)
    feats, points = torch.randn(2, 9, C), torch.rand(2, 9, 2)
    out = agg(set_tap(feats, points))
    perm = torch.randperm(9)
    assert torch.allclose(agg(set_tap(feats[:, perm], points[:, perm])), out, atol=1e-5)
    padded = set_tap(torch.cat([feats, torch.randn(2, 4, C) * 50], 1), torch.cat([points, torch.rand(2, 4, 2)], 1),
                     torch.cat([torch.zeros(2, 9, dtype=torch.bool), torch.ones(2, 4, dtype=torch.bool)], 1))
    assert torch.allclose(agg(padded), out, atol=1e-5)
    assert torch.allclose(agg(set_tap(feats[:1], points[:1]))[0], out[0], atol=1e-5)
    assert all_params_get_grads(agg, agg(set_tap(feats, points)))


def test_query_set_aggregator_spatial_prior():
    torch.manual_seed(0)
    agg = QuerySetAggregator(C, out_dim=D, num_queries=1, num_heads=2, sigma=0.05)
    feats = torch.randn(1, 2, C)
    points = torch.tensor([[[0.5, 0.5], [0.95, 0.95]]])  # the learned point starts at the centre
    out = agg(set_tap(feats, points))
    far = feats.clone()
    far[0, 1] += 5.0
    assert (agg(set_tap(far, points)) - out).abs().max() < 1e-6  # exp(-0.405 / 0.005) ~ 1e-35
    near = feats.clone()
    near[0, 0] += 5.0
    assert (agg(set_tap(near, points)) - out).abs().max() > 1e-2
    with pytest.raises(ValueError, match='every entry of the set padded'):
        agg(set_tap(feats, points, torch.ones(1, 2, dtype=torch.bool)))


def test_registered_and_checked():
    for name in ('NexusFlowMLPAggregator', 'NexusFlowQuerySetAggregator', 'NexusFlowDeformableAggregator'):
        agg = MODELS.build(dict(type=name, in_channels=C, out_dim=D))
        assert agg.out_dim == D
    with pytest.raises(ValueError, match=r'\[B, N>=1, 8\]'):
        MLPAggregator(C, D)(set_tap(torch.randn(2, 3, 5), torch.rand(2, 3, 2)))
    with pytest.raises(ValueError, match='divisible'):
        DeformableAggregator(C, D, num_heads=3)
    with pytest.raises(ValueError, match='pool'):
        QuerySetAggregator(C, D, pool='max')
