"""Official BEVFormer / UniAD / FCOS3D checkpoints -> this project's full-size model, without the real files.

The manifests (``tests/data/official_checkpoints/*.json``, written by ``make_manifests.py`` there from the public
module definitions) give every key and shape of the official files. Tensors in that layout go through the
converters and are loaded into ``uniad_full.py`` built on the meta device: every source key must be mapped or
dropped with a reason, every model key filled or listed as left at init, and nothing else.
"""
import copy
import json
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import projects.nexusflow  # noqa: F401
from mmdet3d.registry import MODELS
from projects.nexusflow.models.converters import convert_official, fold_into_bias, keep_level
from projects.nexusflow.models.converters.box_code import track_reg_rows_017_to_1x
from projects.nexusflow.models.uniad.track.box_coder import TrackBoxCoder

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / 'tests' / 'data' / 'official_checkpoints'
FULL = REPO / 'configs' / 'uniad_nexusflow' / 'uniad_full.py'
OFFICIAL_EVAL = REPO / 'configs' / 'uniad_nexusflow' / 'uniad_full_official_eval.py'
CASES = dict(bevformer='bevformer_r101_dcn_24ep', uniad='uniad_base_track_map', fcos3d='r101_dcn_fcos3d_pretrain')


def manifest(name):
    return json.loads((MANIFESTS / f'{CASES[name]}.json').read_text())


@pytest.fixture(scope='module')
def full_model():
    with torch.device('meta'):
        return MODELS.build(copy.deepcopy(Config.fromfile(str(FULL)).model))


def meta_state(name):
    return {key: torch.empty(shape, device='meta') for key, shape in manifest(name).items()}


@pytest.mark.parametrize('name', sorted(CASES))
def test_every_key_accounted_for_and_strict_load(name, full_model):
    shapes = {key: tuple(v.shape) for key, v in full_model.state_dict().items()}
    converted, report = convert_official(meta_state(name), name, shapes)
    assert report.ok, report.to_text()
    source_keys = set(manifest(name))
    assert set(report.mapped.values()) | set(report.dropped) == source_keys
    assert not set(report.mapped.values()) & set(report.dropped)
    assert all(report.dropped.values()) and all(report.left_at_init.values())
    assert 'not in this checkpoint' not in report.left_at_init.values()  # every unfilled key is explained
    missing, unexpected = full_model.load_state_dict(converted, strict=False, assign=True)  # no copies
    assert unexpected == [] and sorted(missing) == sorted(report.left_at_init)
    if name == 'uniad':  # stage 1 fills the whole model
        assert missing == []
        full_model.load_state_dict(converted, strict=True, assign=True)
    if name == 'fcos3d':
        assert all(key.startswith(('img_backbone.', 'img_neck.')) for key in converted)
        assert 'neck.fpn_convs.4.conv.weight' in report.dropped


def test_unrecognised_keys_and_wrong_shapes_are_reported(full_model):
    shapes = {key: tuple(v.shape) for key, v in full_model.state_dict().items()}
    state = meta_state('bevformer')
    state['pts_bbox_head.some_new_branch.weight'] = torch.empty(3, device='meta')
    state['pts_bbox_head.bev_embedding.weight'] = torch.empty(100 * 100, 256, device='meta')  # BEVFormer-small
    _, report = convert_official(state, 'bevformer', shapes)
    assert not report.ok
    assert report.unrecognised == ['pts_bbox_head.some_new_branch.weight']
    assert report.shape_mismatch == [('bev_encoder.bev_queries.weight', (40000, 256), (10000, 256))]


def official_decode(code):
    """BEVFormer / UniAD ``denormalize_bbox`` + the bottom-centre shift of their ``get_bboxes`` (float64), then the
    mmdet3d 0.17 LiDAR box ``(x, y, z, w, l, h, r)`` rewritten in the 1.x convention (compatibility notes of
    mmdet3d v1.0.0rc0): sizes ``(l, w, h)``, ``yaw = -r - pi/2``."""
    cx, cy, log_w, log_l, cz, log_h, sin_r, cos_r, vx, vy = code.tolist()
    w, l, h = math.exp(log_w), math.exp(log_l), math.exp(log_h)
    r = math.atan2(sin_r, cos_r)
    return [cx, cy, cz - h / 2, l, w, h, -r - math.pi / 2, vx, vy]


def test_regression_rows_decode_to_the_same_box():
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(10, 256, generator=gen, dtype=torch.float64), torch.randn(10, generator=gen,
                                                                                         dtype=torch.float64)
    new_weight, new_bias = track_reg_rows_017_to_1x(weight, bias)
    coder = TrackBoxCoder()
    for _ in range(5):
        feat = torch.randn(256, generator=gen, dtype=torch.float64)
        expected = official_decode(weight @ feat + bias)
        ours = coder.decode(new_weight @ feat + new_bias).tolist()
        assert ours[:6] == pytest.approx(expected[:6], rel=1e-12, abs=1e-12)
        assert ours[7:] == pytest.approx(expected[7:], rel=1e-12, abs=1e-12)
        assert math.remainder(ours[6] - expected[6], 2 * math.pi) == pytest.approx(0.0, abs=1e-12)
        assert ours[3] != pytest.approx(ours[4])  # l and w differ, so a missing swap would fail


def test_uniad_values_reach_the_right_places(full_model):
    gen = torch.Generator().manual_seed(1)
    shapes = manifest('uniad')
    state = {key: (torch.randn(shape, generator=gen) if math.prod(shape) < 300_000 else
                   torch.empty(shape, device='meta')) for key, shape in shapes.items()}
    converted, report = convert_official(state, 'uniad',
                                         {k: tuple(v.shape) for k, v in full_model.state_dict().items()})
    assert report.ok
    src_w, src_b = state['pts_bbox_head.reg_branches.5.4.weight'], state['pts_bbox_head.reg_branches.5.4.bias']
    assert torch.equal(converted['track_head.reg_branches.5.4.weight'][2], src_w[3])
    assert torch.equal(converted['track_head.reg_branches.5.4.bias'][6], -src_b[7])
    assert torch.equal(converted['track_head.memory_bank.ffn.2.weight'], state['memory_bank.temporal_fc2.weight'])
    assert torch.equal(converted['map_head.stuff_mask_head.blocks.3.norms.0.bias'],
                       state['seg_head.stuff_mask_head.blocks.3.norm3.bias'])
    assert torch.equal(converted['map_head.thing_mask_head.blocks.1.norms.0.bias'],
                       state['seg_head.things_mask_head.blocks.1.head_norm1.bias'])
    # map decoder offsets: head h, level 0, point p of the 4-level layout [8 heads, 4 levels, 4 points, 2]
    src = state['seg_head.transformer.decoder.layers.2.attentions.1.sampling_offsets.weight'].view(8, 4, 4, 2, 256)
    assert torch.equal(converted['map_head.transformer.decoder.layers.2.cross_attn.sampling_offsets.weight'],
                       src[:, 0].reshape(64, 256))
    # map encoder: Linear(query + pos + level_embeds[0]) == converted Linear(query + pos)
    src_w = state['seg_head.transformer.encoder.layers.4.attentions.0.attention_weights.weight'].view(8, 16, 256)
    src_b = state['seg_head.transformer.encoder.layers.4.attentions.0.attention_weights.bias'].view(8, 16)
    level = state['seg_head.transformer.level_embeds'][0]
    query = torch.randn(256, generator=gen)
    official = (src_w[:, :4].double() @ (query + level).double() + src_b[:, :4].double()).reshape(-1)
    ours = (converted['map_head.transformer.encoder.layers.4.self_attn.attention_weights.weight'] @ query
            + converted['map_head.transformer.encoder.layers.4.self_attn.attention_weights.bias'])
    torch.testing.assert_close(ours.double(), official, rtol=1e-5, atol=1e-4)  # float32 rounding only


def test_uniad_map_attention_keeps_all_levels_for_a_compat_target():
    """``compat='uniad'`` (``uniad_full_official_eval.py``): the 4-level map attentions load as they are (encoder
    biases with ``level_embeds[0]`` folded in); the one-level default gets level 0 (test above)."""
    with torch.device('meta'):
        model = MODELS.build(copy.deepcopy(Config.fromfile(str(OFFICIAL_EVAL)).model))
    gen = torch.Generator().manual_seed(2)
    state = {key: (torch.randn(shape, generator=gen) if key.startswith('seg_head.transformer.') else
                   torch.empty(shape, device='meta')) for key, shape in manifest('uniad').items()}
    converted, report = convert_official(state, 'uniad', {k: tuple(v.shape) for k, v in model.state_dict().items()})
    assert report.ok, report.to_text()
    model.load_state_dict(converted, strict=True, assign=True)
    src = 'seg_head.transformer.decoder.layers.3.attentions.1.sampling_offsets.'
    dst = 'map_head.transformer.decoder.layers.3.cross_attn.sampling_offsets.'
    assert converted[dst + 'weight'].shape == (8 * 4 * 4 * 2, 256)
    assert torch.equal(converted[dst + 'weight'], state[src + 'weight'])
    assert torch.equal(converted[dst + 'bias'], state[src + 'bias'])
    src = 'seg_head.transformer.encoder.layers.1.attentions.0.attention_weights.'
    dst = 'map_head.transformer.encoder.layers.1.self_attn.attention_weights.'
    query = torch.randn(256, generator=gen, dtype=torch.float64)
    official = (state[src + 'weight'].double() @ (query + state['seg_head.transformer.level_embeds'][0].double())
                + state[src + 'bias'].double())
    torch.testing.assert_close(converted[dst + 'weight'].double() @ query + converted[dst + 'bias'].double(),
                               official, rtol=1e-5, atol=1e-4)  # float32 rounding only
    one_level = {key: torch.empty(tuple(value.shape), device='meta') for key, value in state.items()}
    projections = [k for k in one_level if k.startswith('seg_head.transformer.') and k.endswith(
        ('sampling_offsets.weight', 'sampling_offsets.bias', 'attention_weights.weight', 'attention_weights.bias'))]
    for key in projections:
        one_level[key] = torch.empty((one_level[key].shape[0] // 4, *one_level[key].shape[1:]), device='meta')
    _, report = convert_official(one_level, 'uniad', {k: tuple(v.shape) for k, v in model.state_dict().items()})
    assert not report.ok and (dst + 'weight', (128, 256), (32, 256)) in report.shape_mismatch  # seg_numlevel_1


def test_keep_level_and_fold():
    rows = torch.arange(2 * 3 * 4 * 2, dtype=torch.float64)  # row index = ((h * 3 + l) * 4 + p) * 2 + c
    weight, bias = keep_level(rows[:, None].repeat(1, 5), rows, num_heads=2, num_levels=3, values_per_point=2,
                              level=1)
    expected = torch.tensor([((h * 3 + 1) * 4 + p) * 2 + c for h in range(2) for p in range(4) for c in range(2)],
                            dtype=torch.float64)
    assert torch.equal(bias, expected) and torch.equal(weight[:, 0], expected)
    with pytest.raises(ValueError, match='cannot split'):
        keep_level(rows[:, None], rows, num_heads=5, num_levels=3, values_per_point=2)
    w, b, c, x = torch.randn(4, 3), torch.randn(4), torch.randn(3), torch.randn(3)
    torch.testing.assert_close(w @ x + fold_into_bias(w, b, c), w @ (x + c) + b)


def test_command_line_writes_checkpoint_and_reports(tmp_path, capsys):
    """The shared CLI in-process (the three scripts only call ``main(<source>)``), on a file of meta tensors."""
    from tools.model_converters.convert_official import main
    for name in CASES:
        script = (REPO / 'tools' / 'model_converters' / f'{name}_to_nexusflow.py').read_text()
        assert f"main('{name}')" in script
    src = tmp_path / 'r101_dcn_fcos3d_pretrain.pth'
    torch.save(dict(state_dict=meta_state('fcos3d'), meta=dict(epoch=12)), src)
    dst = tmp_path / 'out' / 'fcos3d_nexusflow.pth'
    assert main('fcos3d', [str(src), str(dst)]) == 0
    assert 'fcos3d -> nexusflow' in capsys.readouterr().out and dst.is_file()
    report = json.loads((tmp_path / 'out' / 'fcos3d_nexusflow.report.json').read_text())
    assert report['ok'] and report['dropped']['neck.fpn_convs.4.conv.bias']
    assert (tmp_path / 'out' / 'fcos3d_nexusflow.report.txt').read_text().startswith(str(src))
    with pytest.raises(SystemExit):
        main('fcos3d', [str(src), str(dst)])
    assert '--overwrite' in capsys.readouterr().err
    state = meta_state('fcos3d')
    state['bbox_head_v2.extra.weight'] = torch.empty(1, device='meta')
    torch.save(state, src)
    assert main('fcos3d', [str(src), str(tmp_path / 'bad.pth')]) == 1
    assert not (tmp_path / 'bad.pth').exists() and (tmp_path / 'bad.report.txt').is_file()
