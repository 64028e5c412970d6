"""BEVFormer encoder: shapes, batching, camera geometry, ego-motion alignment, gradients, checkpointing."""
import math

import numpy as np
import pytest
import torch

from mmdet3d.registry import MODELS
from projects.nexusflow.models.uniad.bev import BEVFormerEncoder, rebatch_camera_hits, sample_bev
from projects.nexusflow.models.uniad.bev.geometry import (bev_cell_centres, bev_xy_to_unit, pillar_points,
                                                          prev_bev_reference_points, project_to_cameras, relative_yaw)

# non-square grid of 1 m cells: 10 rows (y in [-5, 5]) x 12 columns (x in [-6, 6])
PC_RANGE = (-6.0, -5.0, -3.0, 6.0, 5.0, 3.0)
BEV_H, BEV_W, C = 10, 12, 32
PAD_HW = (32, 48)
FEAT_SHAPES = [(8, 12), (4, 6)]


def camera(yaw_deg=0.0, focal=24.0, centre=(24.0, 16.0), height=0.0):
    """``lidar2img`` of a pinhole camera at ``(0, 0, height)`` looking along the LiDAR y axis turned by ``yaw``."""
    yaw = math.radians(yaw_deg)
    forward = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
    right = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    lidar2cam = np.eye(4)
    lidar2cam[:3, :3] = np.stack([right, [0.0, 0.0, -1.0], forward])  # rows: cam x (right), y (down), z (ahead)
    lidar2cam[:3, 3] = -lidar2cam[:3, :3] @ np.array([0.0, 0.0, height])
    intrinsic = np.eye(4)
    intrinsic[0, 0] = intrinsic[1, 1] = focal
    intrinsic[:2, 2] = centre
    return intrinsic @ lidar2cam


def blind_camera():
    """A camera that sees nothing of the BEV range: every point is behind it (depth = -y - 100)."""
    mat = np.zeros((4, 4))
    mat[0, 3], mat[1, 3] = 1.0, 1.0
    mat[2, 1], mat[2, 3] = -1.0, -100.0
    mat[3, 3] = 1.0
    return mat


def make_meta(cams, can_bus_seed=0, img_shape=None):
    meta = dict(lidar2img=np.stack(cams), batch_input_shape=PAD_HW,
                can_bus=np.random.default_rng(can_bus_seed).normal(size=18))
    if img_shape is not None:
        meta['img_shape'] = img_shape
    return meta


def make_encoder(**kwargs):
    cfg = dict(bev_h=BEV_H, bev_w=BEV_W, embed_dims=C, num_layers=2, num_cams=2, num_feature_levels=2,
               point_cloud_range=PC_RANGE, num_points_in_pillar=4, num_heads=4, tsa_num_points=4,
               sca_num_points=8, ffn_dims=64, dropout=0.0)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return BEVFormerEncoder(**cfg)


def make_feats(batch, seed=1, dtype=torch.float32, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 2, C, h, w, generator=gen, dtype=dtype).requires_grad_(requires_grad)
            for h, w in FEAT_SHAPES]


def motion(dx=0.0, dy=0.0, yaw_deg=0.0):
    """``prev2cur`` of an ego that moved ``(dx, dy)`` metres (previous frame) and turned ``yaw_deg`` left."""
    yaw = math.radians(yaw_deg)
    cur2prev = torch.eye(4, dtype=torch.float64)
    cur2prev[:2, :2] = torch.tensor([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    cur2prev[:2, 3] = torch.tensor([dx, dy])
    return torch.linalg.inv(cur2prev)


def two_sample_batch(dtype=torch.float32):
    metas = [make_meta([camera(0.0), camera(180.0)], 0),
             make_meta([camera(30.0), blind_camera()], 1, img_shape=(30, 44))]
    prev_bev = torch.randn(2, BEV_H * BEV_W, C, generator=torch.Generator().manual_seed(2), dtype=dtype)
    prev2cur = torch.stack([motion(0.4, 1.3, 20.0), torch.zeros(4, 4, dtype=torch.float64)]).to(dtype)
    return make_feats(2, dtype=dtype), metas, prev_bev, prev2cur


def test_build_from_registry_and_init():
    enc = MODELS.build(dict(type='UniADBEVFormerEncoder', bev_h=BEV_H, bev_w=BEV_W, embed_dims=C, num_layers=1,
                            num_cams=2, num_feature_levels=2, num_heads=4))
    tsa = enc.layers[0].temporal_attn
    bias = tsa.sampling_offsets.bias.view(4, 2, 4, 2)  # [heads, queues, points, xy]: a ring of rays
    assert torch.equal(bias[0, 0, :, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert torch.equal(bias[1, 1, :, 1], torch.tensor([1.0, 2.0, 3.0, 4.0]))  # head 1 points along +y
    assert torch.equal(tsa.attention_weights.weight, torch.zeros_like(tsa.attention_weights.weight))
    assert enc.bev_queries.weight.shape == (BEV_H * BEV_W, C)


def test_output_shapes_and_batch_equals_single_samples():
    enc = make_encoder().double().eval()
    feats, metas, prev_bev, prev2cur = two_sample_batch(torch.float64)
    with torch.no_grad():
        single = enc([f[:1] for f in feats], metas[:1])
        batched = enc(feats, metas, prev_bev, prev2cur)
        alone = [enc([f[b:b + 1] for f in feats], metas[b:b + 1], prev_bev[b:b + 1], prev2cur[b:b + 1])
                 for b in range(2)]
        no_history = enc([f[1:] for f in feats], metas[1:])
    assert single.shape == (1, BEV_H * BEV_W, C) and batched.shape == (2, BEV_H * BEV_W, C)
    for b in range(2):
        assert torch.allclose(batched[b], alone[b][0], rtol=0, atol=1e-10)
    assert torch.allclose(alone[1], no_history, rtol=0, atol=1e-12)  # all-zero prev2cur == no history
    assert not torch.allclose(batched[0], enc([f[:1] for f in feats], metas[:1])[0].detach(), atol=1e-3)


def test_projection_and_visibility_of_a_known_cell():
    points = pillar_points(BEV_H, BEV_W, PC_RANGE, 4, dtype=torch.float64)  # [HW, 4, 3]
    assert torch.allclose(points[0, :, 2], torch.tensor([-2.5, -0.8333333333, 0.8333333333, 2.5],
                                                        dtype=torch.float64))
    lidar2img = torch.from_numpy(camera(0.0, focal=24.0, centre=(24.0, 16.0)))[None, None]
    unit, visible = project_to_cameras(points.view(-1, 3), lidar2img, torch.tensor([[32.0, 48.0]]),
                                       torch.tensor([[[32.0, 48.0]]]))
    unit, visible = unit.view(BEV_H, BEV_W, 4, 2), visible.view(BEV_H, BEV_W, 4)
    # cell (row 9, col 6) is centred at x = 0.5, y = 4.5; its pillar point at z = 0.8333 m projects to
    # u = 24 + 24 * 0.5 / 4.5, v = 16 - 24 * 0.8333 / 4.5
    expected = torch.tensor([(24 + 24 * 0.5 / 4.5) / 48, (16 - 24 * (5 / 6) / 4.5) / 32], dtype=torch.float64)
    assert torch.allclose(unit[9, 6, 2], expected, atol=1e-6) and bool(visible[9, 6, 2])
    xyz = points.view(BEV_H, BEV_W, 4, 3)
    u = 24 + 24 * xyz[..., 0] / xyz[..., 1]
    v = 16 - 24 * xyz[..., 2] / xyz[..., 1]
    analytic = (xyz[..., 1] > 0) & (u > 0) & (u < 48) & (v > 0) & (v < 32)
    assert torch.equal(visible, analytic)
    assert not visible[:5].any()  # rows 0-4 are behind the camera (y < 0)
    # a cell is seen when |x| < y (inside the width) and its lowest pillar point |z| = 0.83 m is inside the
    # height (|z| < 2 y / 3): rows y = 1.5, 2.5, 3.5, 4.5 with 2, 4, 6, 8 cells
    assert int(visible.any(-1).sum()) == 20


def test_unpadded_image_shape_bounds_visibility_and_padding_normalises():
    points = torch.tensor([[0.0, 4.0, 0.0], [3.9, 4.0, 0.0]], dtype=torch.float64)  # u = 24, u = 47.4
    lidar2img = torch.from_numpy(camera(0.0))[None, None]
    unit, visible = project_to_cameras(points, lidar2img, torch.tensor([[32.0, 48.0]]),
                                       torch.tensor([[[30.0, 44.0]]]))
    assert visible[0, 0].tolist() == [True, False]  # the second point lies in the right padding
    assert torch.allclose(unit[0, 0, :, 0], torch.tensor([0.5, 47.4 / 48], dtype=torch.float64))


def test_projection_stays_fp32_under_autocast():
    points = pillar_points(BEV_H, BEV_W, PC_RANGE, 4).view(-1, 3)
    lidar2img = torch.from_numpy(camera(0.0)).float()[None, None]
    sizes = torch.tensor([[32.0, 48.0]])
    reference = project_to_cameras(points, lidar2img, sizes, sizes[:, None])
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        unit, visible = project_to_cameras(points, lidar2img, sizes, sizes[:, None])
    assert unit.dtype == torch.float32 and torch.equal(unit, reference[0]) and torch.equal(visible, reference[1])


def test_rebatch_camera_hits():
    visible = torch.zeros(1, 2, 5, 2, dtype=torch.bool)
    visible[0, 0, 3, 1] = visible[0, 0, 1, 0] = visible[0, 1, 3, 0] = True
    ref = torch.arange(20, dtype=torch.float32).view(1, 1, 5, 2, 2).repeat(1, 2, 1, 1, 1)
    hits = rebatch_camera_hits(ref, visible)
    assert hits.index[0, 0].tolist() == [1, 3] and hits.index[0, 1, 0].item() == 3
    assert hits.valid.tolist() == [[[True, True], [True, False]]]
    assert torch.equal(hits.reference_points[0, 0, 1], ref[0, 0, 3])
    assert hits.num_cams_hit.tolist() == [[1.0, 1.0, 1.0, 2.0, 1.0]]


def test_blind_camera_is_handled_and_ignored():
    enc = make_encoder().eval()
    feats, metas, _, _ = two_sample_batch()
    feats = [f[1:].clone().requires_grad_(True) for f in feats]  # sample 1: camera 1 sees nothing
    camera_ctx = enc._camera_context(feats, metas[1:], torch.float32)
    assert camera_ctx.hits.valid[0, 1].sum() == 0 and camera_ctx.hits.valid[0, 0].sum() > 0
    out = enc(feats, metas[1:])
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(out).all()
    assert all(f.grad[:, 1].abs().max() == 0 for f in feats) and all(f.grad[:, 0].abs().max() > 0 for f in feats)
    changed = [f.detach().clone() for f in feats]
    for f in changed:
        f[:, 1] += 10.0
    assert torch.allclose(enc(changed, metas[1:]), out, atol=1e-6)


def test_alignment_three_metres_forward():
    prev2cur = motion(dy=3.0)[None].float()  # ego moved 3 m forward (+y)
    assert torch.allclose(prev2cur[0, :3, 3], torch.tensor([0.0, -3.0, 0.0]))
    ref = prev_bev_reference_points(prev2cur, BEV_H, BEV_W, PC_RANGE)  # [1, HW, 2]
    # a world point seen in the previous frame at (0.5, 4.5) (row 9, col 6) is 3 m closer now: (0.5, 1.5),
    # i.e. current cell (row 6, col 6), whose previous-grid reference is (0.5, 4.5)
    expected = bev_xy_to_unit(torch.tensor([0.5, 4.5]), PC_RANGE)
    assert torch.allclose(ref[0, 6 * BEV_W + 6], expected, atol=1e-6)
    aligned = align_marker(prev2cur, row=9, col=6)
    assert torch.nonzero(aligned > 0.5).tolist() == [[6, 6]]
    assert aligned[6, 6].item() == pytest.approx(1.0, abs=1e-6)
    covered = sample_bev(torch.ones(1, BEV_H * BEV_W, 1), ref, torch.tensor([[BEV_H, BEV_W]])).view(BEV_H, BEV_W)
    assert torch.allclose(covered[:7], torch.ones(7, BEV_W), atol=1e-6)  # y <= 1.5 m was y <= 4.5 m before
    assert covered[7:].abs().max() == 0  # y >= 2.5 m was beyond the previous grid (y > 5 m): zeros


def test_alignment_ninety_degree_left_turn():
    prev2cur = motion(yaw_deg=90.0)[None].float()
    assert relative_yaw(prev2cur).item() == pytest.approx(math.pi / 2)
    # after a left turn, what was 3.5 m ahead (0.5, 3.5) lies 3.5 m to the right: (3.5, -0.5) -> row 4, col 9
    aligned = align_marker(prev2cur, row=8, col=6)
    assert torch.nonzero(aligned > 0.5).tolist() == [[4, 9]]
    assert aligned[4, 9].item() == pytest.approx(1.0, abs=1e-6)


def align_marker(prev2cur, row, col):
    """Previous BEV = one-hot marker at (row, col); return the aligned map ``[BEV_H, BEV_W]``."""
    prev_bev = torch.zeros(1, BEV_H * BEV_W, 1)
    prev_bev[0, row * BEV_W + col] = 1.0
    ref = prev_bev_reference_points(prev2cur, BEV_H, BEV_W, PC_RANGE)
    return sample_bev(prev_bev, ref, torch.tensor([[BEV_H, BEV_W]])).view(BEV_H, BEV_W)


def test_encoder_wires_alignment_and_can_bus_motion():
    enc = make_encoder()
    feats, metas, prev_bev, _ = two_sample_batch()
    prev2cur = torch.stack([motion(dy=3.0), motion(yaw_deg=90.0)]).float()
    has_history = torch.tensor([True, False])
    temporal = enc._temporal_context(prev_bev, prev2cur, has_history, torch.float32)
    expected = prev_bev_reference_points(prev2cur[:1], BEV_H, BEV_W, PC_RANGE)
    assert torch.allclose(temporal.reference_points[0, 0], expected[0])
    current = bev_xy_to_unit(bev_cell_centres(BEV_H, BEV_W, PC_RANGE), PC_RANGE)
    assert torch.equal(temporal.reference_points[1, 0], current)  # no history: the current grid
    assert torch.equal(temporal.reference_points[0, 1], current)
    can_bus = enc._can_bus_signal(metas, prev2cur, torch.tensor([True, True]))
    assert torch.allclose(can_bus[0, :3], torch.tensor([0.0, -3.0, 0.0], dtype=torch.float64), atol=1e-6)
    assert can_bus[1, 17].item() == pytest.approx(90.0, abs=1e-4)
    assert torch.equal(can_bus[:, 3:17], torch.from_numpy(np.stack([m['can_bus'] for m in metas]))[:, 3:17])
    no_history = enc._can_bus_signal(metas, prev2cur, torch.tensor([False, False]))
    assert no_history[:, :3].abs().max() == 0 and no_history[:, 17].abs().max() == 0


def test_gradients_reach_everything_and_loss_falls():
    enc = make_encoder()
    feats, metas, prev_bev, prev2cur = two_sample_batch()
    feats = [f.requires_grad_(True) for f in feats]
    target = torch.randn(2, BEV_H * BEV_W, C, generator=torch.Generator().manual_seed(3))
    optimizer = torch.optim.Adam(enc.parameters(), lr=1e-2)
    losses = []
    for step in range(6):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(enc(feats, metas, prev_bev, prev2cur), target)
        loss.backward()
        if step == 1:  # from the second step on (the zero-initialised attention weights have moved)
            silent = [name for name, p in enc.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
            assert silent == []
            assert all(f.grad.abs().sum() > 0 for f in feats)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_with_cp_matches_plain_run_and_is_deterministic():
    results = []
    for with_cp in (False, True, False):
        enc = make_encoder(with_cp=with_cp, dropout=0.1).train()
        feats, metas, prev_bev, prev2cur = two_sample_batch()
        feats = [f.requires_grad_(True) for f in feats]
        torch.manual_seed(5)
        out = enc(feats, metas, prev_bev, prev2cur)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in enc.parameters()], [f.grad for f in feats]))
    plain, checkpointed, again = results
    assert torch.equal(plain[0], again[0])  # deterministic, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(plain[1], again[1]))
    assert torch.allclose(plain[0], checkpointed[0], rtol=0, atol=1e-6)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(plain[1], checkpointed[1]))
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(plain[2], checkpointed[2]))


def test_bf16_autocast_runs_close_to_fp32():
    enc = make_encoder().eval()
    feats, metas, prev_bev, prev2cur = two_sample_batch()
    with torch.no_grad():
        reference = enc(feats, metas, prev_bev, prev2cur)
        with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
            out = enc(feats, metas, prev_bev, prev2cur)
    assert torch.isfinite(out).all()
    assert (out.float() - reference).abs().mean() < 0.05


@pytest.mark.parametrize('broken', ['levels', 'cams', 'channels', 'metas', 'prev_bev', 'prev2cur', 'sca_points'])
def test_bad_inputs_raise(broken):
    enc = make_encoder()
    feats, metas, prev_bev, prev2cur = two_sample_batch()
    if broken == 'sca_points':
        with pytest.raises(ValueError, match='multiple'):
            make_encoder(sca_num_points=6)
        return
    if broken == 'levels':
        feats = feats[:1]
    elif broken == 'cams':
        feats = [f[:, :1] for f in feats]
    elif broken == 'channels':
        feats = [f[:, :, :16] for f in feats]
    elif broken == 'metas':
        metas = metas[:1]
    elif broken == 'prev_bev':
        prev_bev = prev_bev[:, :-1]
    else:
        prev2cur = prev2cur[:, :3]
    with pytest.raises(ValueError):
        enc(feats, metas, prev_bev, prev2cur)


def test_missing_meta_key_raises_key_error():
    enc = make_encoder()
    feats, metas, _, _ = two_sample_batch()
    del metas[1]['lidar2img']
    with pytest.raises(KeyError, match='lidar2img'):
        enc(feats, metas)
