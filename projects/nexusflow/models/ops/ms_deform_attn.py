"""The one multi-scale deformable attention sampling op that every module of the plugin calls.

On CUDA tensors it runs mmcv's compiled kernel (``MultiScaleDeformableAttnFunction``); everywhere else it runs a
pure PyTorch path built on ``F.grid_sample`` (bilinear, zero padding, ``align_corners=False``: the same
convention as the kernel and as mmcv's ``multi_scale_deformable_attn_pytorch``). The PyTorch path follows mmcv's
but sums the levels one at a time, so its peak memory holds the samples of one level instead of all of them.
Half-precision inputs (fp16 / bf16, e.g. under autocast) are up-cast to float32 for the sampling arithmetic and
the output is cast back to the value's dtype, so AMP never reaches the op; float64 inputs stay float64 (gradcheck).
"""
import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction


def check_msda_inputs(value, spatial_shapes, sampling_locations, attention_weights):
    """Raise ``ValueError`` with expected-vs-got shapes when the inputs do not fit together."""
    if value.dim() != 4:
        raise ValueError(f'value must be [B, num_keys, num_heads, head_dims], got shape {tuple(value.shape)}')
    if spatial_shapes.dim() != 2 or spatial_shapes.shape[1] != 2:
        raise ValueError(f'spatial_shapes must be [num_levels, 2] (h, w), got {tuple(spatial_shapes.shape)}')
    bs, num_keys, num_heads, _ = value.shape
    expected_keys = int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum())
    if expected_keys != num_keys:
        raise ValueError(f'value has {num_keys} keys but spatial_shapes {spatial_shapes.tolist()} '
                         f'describe {expected_keys}')
    num_levels = spatial_shapes.shape[0]
    if sampling_locations.dim() != 6 or sampling_locations.shape[-1] != 2:
        raise ValueError('sampling_locations must be [B, num_queries, num_heads, num_levels, num_points, 2], '
                         f'got {tuple(sampling_locations.shape)}')
    if sampling_locations.shape[0] != bs:
        raise ValueError(f'sampling_locations has batch {sampling_locations.shape[0]}, value has batch {bs}')
    if tuple(sampling_locations.shape[2:4]) != (num_heads, num_levels):
        raise ValueError(f'sampling_locations has (heads, levels) = {tuple(sampling_locations.shape[2:4])}, '
                         f'expected ({num_heads}, {num_levels}) from value and spatial_shapes')
    if tuple(attention_weights.shape) != tuple(sampling_locations.shape[:-1]):
        raise ValueError(f'attention_weights must have shape {tuple(sampling_locations.shape[:-1])}, '
                         f'got {tuple(attention_weights.shape)}')


def _compute_dtype(dtype):
    """float64 stays float64; every other floating dtype is sampled in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def msda_pytorch(value, spatial_shapes, sampling_locations, attention_weights):
    """PyTorch path of :func:`multi_scale_deformable_attn` (same arguments and result), one level at a time."""
    bs, _, num_heads, head_dims = value.shape
    num_queries, num_points = sampling_locations.shape[1], sampling_locations.shape[4]
    grids = 2 * sampling_locations - 1  # [0, 1] -> grid_sample's [-1, 1]
    output = value.new_zeros(bs * num_heads, head_dims, num_queries)
    start = 0
    for level, (height, width) in enumerate(spatial_shapes.tolist()):
        # [B, h*w, heads, d] -> [B*heads, d, h, w]
        value_l = value[:, start:start + height * width].flatten(2).transpose(1, 2)
        value_l = value_l.reshape(bs * num_heads, head_dims, height, width)
        # [B, Q, heads, P, 2] -> [B*heads, Q, P, 2]
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled = F.grid_sample(value_l, grid_l, mode='bilinear', padding_mode='zeros',
                                align_corners=False)  # [B*heads, d, Q, P]
        weights_l = attention_weights[:, :, :, level].transpose(1, 2)  # [B, heads, Q, P]
        weights_l = weights_l.reshape(bs * num_heads, 1, num_queries, num_points)
        output = output + (sampled * weights_l).sum(-1)  # [B*heads, d, Q]
        start += height * width
    return output.view(bs, num_heads * head_dims, num_queries).transpose(1, 2).contiguous()


def multi_scale_deformable_attn(value, spatial_shapes, level_start_index, sampling_locations,
                                attention_weights, im2col_step=64, use_cuda_kernel=True):
    """Sample ``value`` at ``sampling_locations`` and sum with ``attention_weights``.

    Args:
        value (Tensor): ``[B, num_keys, num_heads, head_dims]``, the levels flattened row-major one after another.
        spatial_shapes (LongTensor): ``[num_levels, 2]``, ``(h, w)`` of each level.
        level_start_index (LongTensor): ``[num_levels]``, offset of each level in ``num_keys``
            (``cat([0], cumsum(h * w)[:-1])``).
        sampling_locations (Tensor): ``[B, num_queries, num_heads, num_levels, num_points, 2]``, ``(x, y)`` in
            ``[0, 1]``, top-left ``(0, 0)``, bottom-right ``(1, 1)`` (pixel ``(j, i)`` has its centre at
            ``((j + 0.5) / w, (i + 0.5) / h)``); points outside read zeros.
        attention_weights (Tensor): ``[B, num_queries, num_heads, num_levels, num_points]``.
        im2col_step (int): batch chunk of the CUDA kernel.
        use_cuda_kernel (bool): ``False`` forces the PyTorch path on CUDA tensors too (debugging, parity tests).

    Returns:
        Tensor: ``[B, num_queries, num_heads * head_dims]`` in the dtype of ``value``.
    """
    check_msda_inputs(value, spatial_shapes, sampling_locations, attention_weights)
    out_dtype = value.dtype
    dtype = _compute_dtype(value.dtype)
    with torch.autocast(device_type=value.device.type, enabled=False):
        value = value.to(dtype)
        sampling_locations = sampling_locations.to(dtype)
        attention_weights = attention_weights.to(dtype)
        if use_cuda_kernel and value.is_cuda:
            output = MultiScaleDeformableAttnFunction.apply(value, spatial_shapes, level_start_index,
                                                            sampling_locations, attention_weights, im2col_step)
        else:
            output = msda_pytorch(value, spatial_shapes, sampling_locations, attention_weights)
    return output.to(out_dtype)


def level_start_index_of(spatial_shapes):
    """``[num_levels]`` start offsets of the flattened levels described by ``spatial_shapes`` ``[num_levels, 2]``."""
    sizes = spatial_shapes[:, 0] * spatial_shapes[:, 1]
    return torch.cat((sizes.new_zeros(1), sizes.cumsum(0)[:-1]))


def single_level_shapes(height, width, device=None):
    """``spatial_shapes`` and ``level_start_index`` of one ``height x width`` level (a BEV grid, one feature map).

    Returns:
        tuple[LongTensor, LongTensor]: ``[[height, width]]`` (shape ``[1, 2]``) and ``[0]`` (shape ``[1]``) on
        ``device``.
    """
    spatial_shapes = torch.tensor([[height, width]], dtype=torch.long, device=device)
    return spatial_shapes, level_start_index_of(spatial_shapes)
