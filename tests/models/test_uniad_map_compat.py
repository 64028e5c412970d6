"""compat='uniad' of the map head against float64 references written from UniAD's / mmcv's code.

(a) The map transformer's ``MultiScaleDeformableAttention(num_levels=4)`` fed one BEV level, as mmcv's CUDA kernel
    ``ms_deformable_im2col_gpu_kernel`` reads it: the reference walks the flat 4-level tensors with the kernel's
    index arithmetic and samples with its bilinear rule, one (batch, query, head, point) at a time.
(b) UniAD's ``SegMaskHead``: ReLU masks, query position added into the query before every block and the tail.
Each part also checks that the default (``compat=None``) keeps this project's behaviour.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from mmdet3d.registry import MODELS
from projects.nexusflow.models.layers import MSDeformAttn
from projects.nexusflow.models.uniad.map import UniADMapHead  # noqa: F401  (registers the modules)
from projects.nexusflow.models.uniad.map.mask_head import MapMaskDecoder
from projects.nexusflow.models.uniad.map.transformer import MapTransformer
from projects.nexusflow.models.uniad.map.uniad_compat import UniADMapDeformAttn, kernel_read
from projects.nexusflow.models.ops import single_level_shapes

C, HEADS, POINTS, LEVELS = 8, 2, 2, 4
BEV_H, BEV_W = 3, 5


def kernel_bilinear(value, height, width, y_im, x_im):
    """mmcv ``ms_deform_attn_im2col_bilinear``: ``value`` ``[h, w, d]``; corners outside the grid read 0."""
    y0, x0 = math.floor(y_im), math.floor(x_im)
    ly, lx = y_im - y0, x_im - x0
    out = value.new_zeros(value.shape[-1])
    for yy, xx, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                        (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        if 0 <= yy < height and 0 <= xx < width:
            out = out + wgt * value[yy, xx]
    return out


def official_msda(attn, query, value, reference_points, height, width):
    """mmcv 1.x ``MultiScaleDeformableAttention.forward`` (no residual / dropout) with ``num_levels=4`` on one
    level, then the CUDA kernel's reads, in float64 with python loops."""
    batch, num_query, _ = query.shape
    head_dims = C // HEADS
    v = attn.value_proj(value).view(batch, height, width, HEADS, head_dims)
    offsets = attn.sampling_offsets(query).view(batch, num_query, HEADS, LEVELS, POINTS, 2)
    weights = attn.attention_weights(query).view(batch, num_query, HEADS, LEVELS * POINTS).softmax(-1)
    weights = weights.view(batch, num_query, HEADS, LEVELS, POINTS)
    if reference_points.shape[-1] == 2:
        normalizer = torch.tensor([width, height], dtype=query.dtype)
        locations = reference_points[:, :, None, :, None, :] + offsets / normalizer
    else:
        locations = (reference_points[:, :, None, :, None, :2]
                     + offsets / POINTS * reference_points[:, :, None, :, None, 2:] * 0.5)
    flat_loc, flat_w = locations.contiguous().view(-1), weights.contiguous().view(-1)
    out = query.new_zeros(batch, num_query, HEADS, head_dims)
    for b in range(batch):
        for q in range(num_query):
            for m in range(HEADS):
                for p in range(POINTS):
                    index = ((b * num_query + q) * HEADS + m) * POINTS + p  # data_weight_ptr, 1 level
                    loc_w, loc_h = flat_loc[2 * index].item(), flat_loc[2 * index + 1].item()
                    h_im, w_im = loc_h * height - 0.5, loc_w * width - 0.5
                    if -1 < h_im < height and -1 < w_im < width:
                        out[b, q, m] += flat_w[index] * kernel_bilinear(v[b, :, :, m], height, width, h_im, w_im)
    return attn.output_proj(out.view(batch, num_query, C))


def make_attn(seed=0):
    torch.manual_seed(seed)
    attn = UniADMapDeformAttn(C, HEADS, POINTS).double()
    for linear in (attn.sampling_offsets, attn.attention_weights):
        torch.nn.init.normal_(linear.weight, std=0.5)
        torch.nn.init.normal_(linear.bias, std=2.0)  # offsets of a few cells: some points leave the grid
    return attn


@pytest.mark.parametrize('box', [False, True])
def test_compat_attention_matches_the_kernel_read_of_mmcv(box):
    attn = make_attn()
    gen = torch.Generator().manual_seed(1)
    batch, num_query = 2, 6
    query = torch.randn(batch, num_query, C, generator=gen, dtype=torch.float64)
    value = torch.randn(batch, BEV_H * BEV_W, C, generator=gen, dtype=torch.float64)
    reference = torch.rand(batch, num_query, 1, 4 if box else 2, generator=gen, dtype=torch.float64)
    shapes, start = single_level_shapes(BEV_H, BEV_W)
    ours = attn(query, value, reference, shapes, start)
    with torch.no_grad():
        expected = official_msda(attn, query, value, reference, BEV_H, BEV_W)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-10)
    # not the same as reading each query's own level 0 (what a one-level model with the level-0 rows computes)
    level0 = MSDeformAttn(C, HEADS, num_levels=1, num_points=POINTS).double()
    state = attn.state_dict()
    for name, per_point in (('sampling_offsets', 2), ('attention_weights', 1)):
        for kind in ('weight', 'bias'):
            rows = state[f'{name}.{kind}'].view(HEADS, LEVELS, POINTS * per_point, -1)[:, 0]
            state[f'{name}.{kind}'] = rows.reshape(-1, *state[f'{name}.{kind}'].shape[1:])
    level0.load_state_dict(state)
    assert (level0(query, value, reference, shapes, start) - ours).abs().max() > 1e-3


def test_compat_query_reads_the_reference_of_query_q_div_4():
    """Zero offsets, uniform weights (1 / 16 each): query ``q`` samples ``points`` times at query ``q // 4``'s
    reference point, so it gets ``points / 16`` of the value there."""
    attn = UniADMapDeformAttn(C, HEADS, POINTS).double()
    for linear in (attn.sampling_offsets, attn.attention_weights):
        torch.nn.init.zeros_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
    for linear in (attn.value_proj, attn.output_proj):
        linear.weight.data.copy_(torch.eye(C, dtype=torch.float64))
        torch.nn.init.zeros_(linear.bias)
    value = torch.arange(BEV_H * BEV_W, dtype=torch.float64)[None, :, None].expand(1, -1, C)
    cells = torch.tensor([3, 14, 7, 0, 9, 5, 11, 2])  # query q sits on cell cells[q]
    reference = torch.stack([(cells % BEV_W + 0.5) / BEV_W, (cells // BEV_W + 0.5) / BEV_H], -1).double()
    shapes, start = single_level_shapes(BEV_H, BEV_W)
    out = attn(torch.zeros(1, len(cells), C, dtype=torch.float64), value, reference[None, :, None], shapes, start)
    expected = POINTS / (LEVELS * POINTS) * cells[torch.arange(len(cells)) // 4].double()
    torch.testing.assert_close(out[0, :, 0], expected)


def test_kernel_read_takes_the_first_quarter_row_major():
    locations = torch.arange(2 * 3 * 2 * 4 * 2 * 2, dtype=torch.float64).view(2, 3, 2, 4, 2, 2)
    weights = torch.arange(2 * 3 * 2 * 4 * 2, dtype=torch.float64).view(2, 3, 2, 4, 2)
    loc, wgt = kernel_read(locations, weights)
    assert loc.shape == (2, 3, 2, 1, 2, 2) and wgt.shape == (2, 3, 2, 1, 2)
    assert torch.equal(wgt.flatten(), torch.arange(24, dtype=torch.float64))
    assert torch.equal(loc.flatten(), torch.arange(48, dtype=torch.float64))


def test_transformer_compat_has_the_official_shapes_and_default_is_one_level():
    kwargs = dict(embed_dims=C, num_encoder_layers=1, num_decoder_layers=2, num_heads=HEADS, num_points=POINTS,
                  ffn_dims=16, dropout=0.0)
    default, compat = MapTransformer(**kwargs), MapTransformer(compat='uniad', **kwargs)
    for model, levels in ((default, 1), (compat, LEVELS)):
        for attn in (model.encoder.layers[0].self_attn, model.decoder.layers[1].cross_attn):
            assert attn.sampling_offsets.weight.shape == (HEADS * levels * POINTS * 2, C)
            assert attn.attention_weights.weight.shape == (HEADS * levels * POINTS, C)
    assert type(default.encoder.layers[0].self_attn) is MSDeformAttn
    compat.init_weights()  # Deformable-DETR ring init over the 4 levels, as mmcv's init_weights
    bias = compat.encoder.layers[0].self_attn.sampling_offsets.bias.view(HEADS, LEVELS, POINTS, 2)
    assert torch.equal(bias[:, 0], bias[:, 3]) and torch.equal(bias[:, :, 1], 2 * bias[:, :, 0])
    gen = torch.Generator().manual_seed(2)
    bev = torch.randn(2, BEV_H * BEV_W, C, generator=gen)
    memory, states, boxes = compat(bev, torch.randn(5, 2 * C, generator=gen), (BEV_H, BEV_W))
    assert memory.shape == (2, BEV_H * BEV_W, C) and states.shape == (2, 2, 5, C) and boxes.shape == (2, 2, 5, 4)
    with pytest.raises(ValueError, match='compat must be one of'):
        MapTransformer(compat='bevformer', **kwargs)


# ---------------------------------------------------------------------------------------------------- (b) masks
def layer_norm(x, norm):
    return F.layer_norm(x, (x.shape[-1], ), norm.weight, norm.bias, norm.eps)


def heads(x):
    return x.view(x.shape[0], x.shape[1], HEADS, -1).transpose(1, 2)


def official_mask_attention(attn, query, key, value=None):
    """UniAD ``Attention`` / ``AttentionTail``: masks ``Linear-ReLU-Linear-ReLU`` of the per-head logits."""
    logits = heads(attn.q_proj(query)) @ heads(attn.k_proj(key)).transpose(-2, -1) * (C // HEADS) ** -0.5
    fused = logits.permute(0, 2, 3, 1)  # [B, N, L, heads]
    mask = F.relu(F.relu(fused @ attn.mask_mlp[0].weight.T + attn.mask_mlp[0].bias) @ attn.mask_mlp[2].weight.T
                  + attn.mask_mlp[2].bias)[..., 0]
    if value is None:
        return None, mask
    out = (logits.softmax(-1) @ heads(attn.v_proj(value))).transpose(1, 2).flatten(2)
    return attn.out_proj(out), mask


def official_self_attention(mha, x):
    """UniAD ``SelfAttention``: ``qkv = Linear(x)`` split as (3, heads, d), softmax attention, ``proj``."""
    q, k, v = (x @ mha.in_proj_weight.T + mha.in_proj_bias).split(C, -1)
    out = ((heads(q) @ heads(k).transpose(-2, -1) * (C // HEADS) ** -0.5).softmax(-1) @ heads(v))
    return mha.out_proj(out.transpose(1, 2).flatten(2))


def official_seg_mask_head(decoder, memory, query, pos_query):
    """UniAD ``SegMaskHead.forward(memory, None, pos_memory=None, query, None, pos_query)`` (drop-path 0)."""
    masks, queries = [], []
    for block in decoder.blocks:
        query = query + pos_query  # with_pos_embed(query_embed, pos_query)
        norms = list(block.norms)
        if block.self_attn is not None:
            query = layer_norm(query + official_self_attention(block.self_attn, query), norms.pop(0))
        out, mask = official_mask_attention(block.cross_attn, query, memory, memory)
        query = layer_norm(query + out, norms[0])
        query = layer_norm(query + block.mlp[3](F.gelu(block.mlp[0](query))), norms[1])
        masks.append(mask)
        queries.append(query)
    _, final = official_mask_attention(decoder.tail, query + pos_query, memory)
    return final, torch.stack(masks), torch.stack(queries)


def make_decoder(self_attn, compat, seed=0):
    torch.manual_seed(seed)
    decoder = MapMaskDecoder(embed_dims=C, num_heads=HEADS, num_layers=3, self_attn=self_attn, compat=compat)
    decoder.init_weights()
    for module in decoder.modules():  # non-zero biases and norms, so every term shows
        if isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm)) and module.bias is not None:
            torch.nn.init.normal_(module.bias, std=0.5)
    return decoder.double()


@pytest.mark.parametrize('self_attn', [False, True])
def test_compat_mask_decoder_matches_seg_mask_head(self_attn):
    decoder = make_decoder(self_attn, 'uniad')
    gen = torch.Generator().manual_seed(3)
    memory = torch.randn(2, BEV_H * BEV_W, C, generator=gen, dtype=torch.float64)
    query = torch.randn(2, 4, C, generator=gen, dtype=torch.float64)
    pos = torch.randn(2, 4, C, generator=gen, dtype=torch.float64)
    ours = decoder(query, memory, pos)
    with torch.no_grad():
        expected = official_seg_mask_head(decoder, memory, query, pos)
    for got, want in zip(ours, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    assert (ours[0] >= 0).all() and (ours[0] == 0).any() and (ours[0] > 0).any()  # the ReLU is active
    default = make_decoder(self_attn, None)
    default.load_state_dict(decoder.state_dict())  # same parameters
    assert (default(query, memory, pos)[0] - ours[0]).abs().max() > 1e-3


@pytest.mark.parametrize('self_attn', [False, True])
def test_default_mask_decoder_keeps_logits_and_position_in_the_attention_inputs(self_attn):
    """compat=None: position added to the attention inputs only (self-attention value without it), no final
    ReLU; the query position never enters the residual stream."""
    decoder = make_decoder(self_attn, None)
    gen = torch.Generator().manual_seed(4)
    memory = torch.randn(1, BEV_H * BEV_W, C, generator=gen, dtype=torch.float64)
    query = start = torch.randn(1, 3, C, generator=gen, dtype=torch.float64)
    pos = torch.randn(1, 3, C, generator=gen, dtype=torch.float64)
    masks, queries = [], []
    with torch.no_grad():
        for block in decoder.blocks:
            norms = list(block.norms)
            if block.self_attn is not None:
                q = query + pos
                attended = block.self_attn(q, q, query, need_weights=False)[0]
                query = layer_norm(query + attended, norms.pop(0))
            logits = (heads(block.cross_attn.q_proj(query + pos))
                      @ heads(block.cross_attn.k_proj(memory)).transpose(-2, -1) * (C // HEADS) ** -0.5)
            masks.append(block.cross_attn.mask_mlp[:3](logits.permute(0, 2, 3, 1))[..., 0])
            out = (logits.softmax(-1) @ heads(block.cross_attn.v_proj(memory))).transpose(1, 2).flatten(2)
            query = layer_norm(query + block.cross_attn.out_proj(out), norms[0])
            query = layer_norm(query + block.mlp(query), norms[1])
            queries.append(query)
        tail = (heads(decoder.tail.q_proj(query + pos)) @ heads(decoder.tail.k_proj(memory)).transpose(-2, -1)
                * (C // HEADS) ** -0.5)
        final = decoder.tail.mask_mlp[:3](tail.permute(0, 2, 3, 1))[..., 0]
    ours = decoder(start, memory, pos)
    for got, want in zip(ours, (final, torch.stack(masks), torch.stack(queries))):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    assert (ours[0] < 0).any()  # logits, no ReLU


def test_head_compat_builds_probability_losses_and_skips_the_sigmoid():
    cfg = dict(type='UniADMapHead', bev_h=BEV_H, bev_w=BEV_W, embed_dims=C, num_query=6,
               transformer=dict(num_encoder_layers=1, num_decoder_layers=2, num_heads=HEADS, num_points=POINTS,
                                ffn_dims=16, dropout=0.0),
               thing_mask_head=dict(num_layers=2, num_heads=HEADS),
               stuff_mask_head=dict(num_layers=2, num_heads=HEADS, self_attn=True))
    head = MODELS.build(dict(cfg, compat='uniad'))
    assert head.transformer.encoder.layers[0].self_attn.num_levels == LEVELS
    assert head.thing_mask_head.compat == 'uniad' and head.stuff_mask_head.compat == 'uniad'
    assert head.criterion.loss_mask.activate is False
    dice_costs = [c for c in head.criterion.mask_assigner.match_costs if type(c).__name__ == 'DiceCost']
    assert len(dice_costs) == 1 and dice_costs[0].pred_act is False
    masks = torch.tensor([[[0.0, 0.3, 1.7] * 5]])
    torch.testing.assert_close(head._to_canvas(masks), masks.view(1, 1, BEV_H, BEV_W))
    default = MODELS.build(cfg)
    assert default.criterion.loss_mask.activate is True
    torch.testing.assert_close(default._to_canvas(masks), masks.view(1, 1, BEV_H, BEV_W).sigmoid())
    with pytest.raises(ValueError, match='DiceLoss'):
        MODELS.build(dict(cfg, compat='uniad', loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True)))
