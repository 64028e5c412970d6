"""The shared deformable-attention module ``MSDeformAttn``: init, levels, value width and padding, batch, registry."""
import pytest
import torch

from mmdet3d.registry import MODELS
from projects.nexusflow.models.layers import MSDeformAttn, check_attention_heads, ring_offset_bias
from projects.nexusflow.models.ops import level_start_index_of, single_level_shapes


def identity_attention(num_levels, value_dims=4):
    """One head, one point per level at the reference (zero offsets), uniform weights, identity projections."""
    attn = MSDeformAttn(embed_dims=4, num_heads=1, num_levels=num_levels, num_points=1, value_dims=value_dims)
    attn.init_weights()
    with torch.no_grad():
        attn.sampling_offsets.bias.zero_()
        attn.value_proj.weight.copy_(torch.eye(4, value_dims))
        attn.output_proj.weight.copy_(torch.eye(4))
    return attn


def test_init_puts_heads_on_a_ring_with_uniform_weights():
    attn = MSDeformAttn(embed_dims=8, num_heads=4, num_levels=2, num_points=3)
    attn.init_weights()
    bias = attn.sampling_offsets.bias.view(4, 2, 3, 2)  # [heads, levels, points, (x, y)]
    directions = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])  # 0, 90, 180, 270 degrees
    expected = directions[:, None, None, :] * torch.tensor([1.0, 2.0, 3.0])[None, None, :, None]
    assert torch.allclose(bias, expected.expand(4, 2, 3, 2), atol=1e-6)
    assert torch.equal(attn.sampling_offsets.bias, ring_offset_bias(4, 2, 3))
    assert attn.sampling_offsets.weight.abs().max() == 0 and attn.attention_weights.weight.abs().max() == 0
    assert attn.attention_weights.bias.abs().max() == 0 and attn.value_proj.bias.abs().max() == 0
    # head 1 of 8 points at 45 degrees: the larger component is scaled to 1 (a square ring, as Deformable-DETR)
    assert torch.allclose(ring_offset_bias(8, 1, 1).view(8, 2)[1], torch.tensor([1.0, 1.0]))


def test_two_levels_average_the_bilinear_samples_of_each_level():
    """Level 0 (2 x 3) holds 10 i + j, level 1 (1 x 2) holds 100 + j. The point (0.5, 0.5) reads (rows 0 and 1,
    column 1) = 6 on level 0 and (row 0, columns 0 and 1) = 100.5 on level 1; uniform weights average them."""
    level0 = (10 * torch.arange(2)[:, None] + torch.arange(3)[None]).float().reshape(-1)
    level1 = 100 + torch.arange(2).float()
    value = torch.cat([level0, level1])[None, :, None].expand(1, 8, 4)
    spatial_shapes = torch.tensor([[2, 3], [1, 2]])
    out = identity_attention(num_levels=2)(torch.zeros(1, 1, 4), value, torch.full((1, 1, 2, 2), 0.5),
                                           spatial_shapes, level_start_index_of(spatial_shapes))
    assert torch.allclose(out, torch.full((1, 1, 4), (6.0 + 100.5) / 2), atol=1e-5)


def test_value_width_and_padding_mask():
    """A 6-channel value read by 4-channel queries; padded cells read as zeros whatever they hold."""
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=4, num_heads=2, num_levels=1, num_points=4, value_dims=6)
    attn.init_weights()
    torch.nn.init.normal_(attn.value_proj.bias)
    shapes, start = single_level_shapes(3, 4)
    value, query, ref = torch.randn(2, 12, 6), torch.randn(2, 5, 4), torch.rand(2, 5, 1, 2)
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[1, 6:] = True
    garbage = value.clone()
    garbage[1, 6:] = 1e3
    masked = attn(query, garbage, ref, shapes, start, mask)
    assert torch.allclose(masked[0], attn(query, value, ref, shapes, start)[0], atol=1e-6)
    # without the mask the garbage leaks in; with it, row 1 equals a value whose padded cells project to zero
    assert (attn(query, garbage, ref, shapes, start)[1] - masked[1]).abs().max() > 1.0
    with torch.no_grad():
        attn.value_proj.bias.zero_()
    zeros = value.clone()
    zeros[1, 6:] = 0.0
    assert torch.allclose(attn(query, garbage, ref, shapes, start, mask), attn(query, zeros, ref, shapes, start),
                          atol=1e-5)


def test_batch_rows_are_independent_and_every_parameter_learns():
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=8, num_heads=2, num_levels=1, num_points=2)
    attn.init_weights()
    shapes, start = single_level_shapes(4, 5)
    query, value = torch.randn(3, 6, 8), torch.randn(3, 20, 8)
    boxes = torch.cat([torch.rand(3, 6, 1, 2), torch.full((3, 6, 1, 2), 0.3)], -1)  # (cx, cy, w, h) references
    out = attn(query, value, boxes, shapes, start)
    for b in range(3):
        assert torch.allclose(attn(query[b:b + 1], value[b:b + 1], boxes[b:b + 1], shapes, start)[0], out[b],
                              atol=1e-6)
    out.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attn.parameters())


def test_registry_names_and_input_errors():
    for name in ('NexusFlowMSDeformAttn', 'UniADBEVDeformableAttention'):
        assert type(MODELS.build(dict(type=name, embed_dims=8, num_heads=2))) is MSDeformAttn
    attn = MSDeformAttn(embed_dims=8, num_heads=2, num_levels=2, num_points=1, value_dims=3)
    shapes = torch.tensor([[2, 2], [1, 1]])
    start = level_start_index_of(shapes)
    query, value, ref = torch.zeros(1, 3, 8), torch.zeros(1, 5, 3), torch.zeros(1, 3, 2, 2)
    with pytest.raises(ValueError, match=r'reference_points must be \[1, 3, 2, 2 or 4\]'):
        attn(query, value, ref[:, :, 0], shapes, start)  # [B, Nq, 2] without the level axis
    with pytest.raises(ValueError, match=r'value must be \[1, Nv, 3\]'):
        attn(query, torch.zeros(1, 5, 8), ref, shapes, start)
    with pytest.raises(ValueError, match=r'value_padding_mask must be \[1, 5\]'):
        attn(query, value, ref, shapes, start, torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match='value has 6 keys'):
        attn(query, torch.zeros(1, 6, 3), ref, shapes, start)
    with pytest.raises(ValueError, match='divisible by num_heads, got 10 and 4'):
        MSDeformAttn(embed_dims=10, num_heads=4)
    with pytest.raises(ValueError, match='num_points must be >= 1'):
        MSDeformAttn(embed_dims=8, num_heads=2, num_points=0)
    with pytest.raises(ValueError, match='divisible'):
        check_attention_heads(8, 0)
    shapes, start = single_level_shapes(3, 4)
    assert shapes.dtype == torch.long and shapes.tolist() == [[3, 4]] and start.tolist() == [0]
