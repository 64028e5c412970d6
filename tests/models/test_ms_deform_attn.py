"""The shared multi-scale deformable attention op against an independent naive bilinear reference."""
import math

import pytest
import torch

from projects.nexusflow.models.ops import level_start_index_of, multi_scale_deformable_attn

SHAPES = [(3, 4), (2, 3)]  # (h, w) per level


def naive_bilinear(level_value, x, y):
    """Bilinear read of ``level_value [h, w, d]`` at unit location ``(x, y)``; zeros outside (align_corners=False)."""
    height, width, _ = level_value.shape
    px, py = x * width - 0.5, y * height - 0.5  # pixel centres at integers
    x0, y0 = math.floor(px), math.floor(py)
    result = torch.zeros_like(level_value[0, 0])
    for row, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for col, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= row < height and 0 <= col < width:
                result = result + wy * wx * level_value[row, col]
    return result


def naive_msda(value, shapes, locations, weights):
    """Explicit loops over batch, query, head, level and point."""
    batch, _, heads, head_dims = value.shape
    num_queries, points = locations.shape[1], locations.shape[4]
    out = torch.zeros(batch, num_queries, heads * head_dims, dtype=value.dtype)
    starts = [0]
    for h, w in shapes:
        starts.append(starts[-1] + h * w)
    for b in range(batch):
        for q in range(num_queries):
            for m in range(heads):
                acc = torch.zeros(head_dims, dtype=value.dtype)
                for lvl, (h, w) in enumerate(shapes):
                    level_value = value[b, starts[lvl]:starts[lvl + 1], m].reshape(h, w, head_dims)
                    for p in range(points):
                        x, y = locations[b, q, m, lvl, p].tolist()
                        acc = acc + weights[b, q, m, lvl, p] * naive_bilinear(level_value, x, y)
                out[b, q, m * head_dims:(m + 1) * head_dims] = acc
    return out


def make_inputs(dtype=torch.float64, batch=2, num_queries=5, heads=2, head_dims=3, points=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.tensor(SHAPES, dtype=torch.long)
    num_keys = int((shapes[:, 0] * shapes[:, 1]).sum())
    value = torch.randn(batch, num_keys, heads, head_dims, generator=gen, dtype=dtype)
    # locations from -0.2 to 1.2: some points fall partly or fully outside the map and must read zeros there
    locations = torch.rand(batch, num_queries, heads, len(SHAPES), points, 2, generator=gen, dtype=dtype) * 1.4 - 0.2
    weights = torch.rand(batch, num_queries, heads, len(SHAPES), points, generator=gen, dtype=dtype)
    return value, shapes, level_start_index_of(shapes), locations, weights


def test_level_start_index():
    shapes = torch.tensor([[3, 4], [2, 3], [1, 1]])
    assert level_start_index_of(shapes).tolist() == [0, 12, 18]


def test_matches_naive_reference_float64():
    value, shapes, starts, locations, weights = make_inputs()
    locations[0, 0, 0, 0, 0] = torch.tensor([5.0, 5.0], dtype=torch.float64)  # far outside: contributes zero
    out = multi_scale_deformable_attn(value, shapes, starts, locations, weights)
    expected = naive_msda(value, SHAPES, locations, weights)
    assert out.dtype == torch.float64 and out.shape == (2, 5, 6)
    assert torch.allclose(out, expected, rtol=0, atol=1e-10)


def test_pixel_centre_reads_exact_value():
    value, shapes, starts, locations, weights = make_inputs(points=1)
    # level 0 pixel (row 2, col 1) has its centre at ((1 + 0.5) / 4, (2 + 0.5) / 3)
    locations[..., 0, 0, :] = torch.tensor([1.5 / 4, 2.5 / 3], dtype=torch.float64)
    weights.zero_()
    weights[..., 0, 0] = 1.0
    out = multi_scale_deformable_attn(value, shapes, starts, locations, weights)
    expected = value[:, 2 * 4 + 1].reshape(2, 1, -1).expand(-1, 5, -1)
    assert torch.allclose(out, expected, rtol=0, atol=1e-12)


def test_gradcheck_float64():
    value, shapes, starts, locations, weights = make_inputs(batch=1, num_queries=3, points=2, seed=1)
    inputs = tuple(t.clone().requires_grad_(True) for t in (value, locations, weights))

    def func(val, loc, wgt):
        return multi_scale_deformable_attn(val, shapes, starts, loc, wgt)

    assert torch.autograd.gradcheck(func, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize('broken', ['keys', 'heads', 'levels', 'weights', 'batch', 'value_dim'])
def test_mismatched_shapes_raise(broken):
    value, shapes, starts, locations, weights = make_inputs()
    if broken == 'keys':
        value = value[:, :-1]
    elif broken == 'heads':
        locations = locations[:, :, :1]
        weights = weights[:, :, :1]
    elif broken == 'levels':
        shapes, starts = shapes[:1], starts[:1]
        value = value[:, :12]
    elif broken == 'weights':
        weights = weights[..., :1]
    elif broken == 'batch':
        locations, weights = locations[:1], weights[:1]
    else:
        value = value.flatten(2)
    with pytest.raises(ValueError):
        multi_scale_deformable_attn(value, shapes, starts, locations, weights)


def test_bf16_autocast_keeps_value_dtype():
    value, shapes, starts, locations, weights = make_inputs(dtype=torch.float32)
    reference = multi_scale_deformable_attn(value, shapes, starts, locations, weights)
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        out_fp32 = multi_scale_deformable_attn(value, shapes, starts, locations, weights)
        out_bf16 = multi_scale_deformable_attn(value.bfloat16(), shapes, starts, locations.bfloat16(),
                                               weights.bfloat16())
    assert out_fp32.dtype == torch.float32 and out_bf16.dtype == torch.bfloat16
    assert torch.equal(out_fp32, reference)  # the sampling itself never runs in bf16
    assert torch.allclose(out_bf16.float(), reference, rtol=0.05, atol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA for the mmcv kernel')
def test_cuda_kernel_matches_pytorch_path():
    value, shapes, starts, locations, weights = (t.cuda() for t in make_inputs(num_queries=64, points=4))
    kernel = multi_scale_deformable_attn(value, shapes, starts, locations, weights)
    pytorch = multi_scale_deformable_attn(value, shapes, starts, locations, weights, use_cuda_kernel=False)
    assert torch.allclose(kernel, pytorch, rtol=0, atol=1e-10)
