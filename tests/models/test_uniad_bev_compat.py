"""compat='uniad' of the BEV encoder against float64 references written from BEVFormer's code (UniAD stage 1)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
from pyquaternion import Quaternion
from test_bev_encoder import BEV_H, BEV_W, C, PC_RANGE, camera, make_encoder, make_feats, make_meta

from projects.nexusflow.models.uniad.bev.uniad_compat import (rotate_bev_nearest, uniad_ego_motion,
                                                              uniad_reference_shift)


def pose(x, y, yaw_deg, z=0.0):
    mat = np.eye(4)
    mat[:3, :3] = Quaternion(axis=[0, 0, 1], degrees=yaw_deg).rotation_matrix
    mat[:3, 3] = [x, y, z]
    return mat


LIDAR2EGO = pose(0.94, 0.0, -90.0, z=1.84)


def frame_pair(prev_xy, prev_yaw, cur_xy, cur_yaw, seed=0):
    """Metas of the current frame and ``prev2cur``: LiDAR poses from ego poses with nuScenes' mounting."""
    prev_ego, cur_ego = pose(*prev_xy, prev_yaw), pose(*cur_xy, cur_yaw)
    prev2cur = np.linalg.inv(cur_ego @ LIDAR2EGO) @ (prev_ego @ LIDAR2EGO)
    meta = make_meta([camera(0.0), camera(180.0)], seed)
    meta.update(ego2global=cur_ego, lidar2ego=LIDAR2EGO)
    return meta, torch.from_numpy(prev2cur)[None], prev_ego, cur_ego


def official_can_bus_deltas(prev_ego, cur_ego):
    """UniAD's dataset: can_bus[:3] = translation, can_bus[-1] = yaw degrees in [0, 360); deltas cur - prev."""
    def patch_angle(ego):
        angle = Quaternion(matrix=ego[:3, :3]).yaw_pitch_roll[0] / np.pi * 180
        return angle + 360 if angle < 0 else angle
    return cur_ego[:3, 3] - prev_ego[:3, 3], patch_angle(cur_ego) - patch_angle(prev_ego), patch_angle(cur_ego)


@pytest.mark.parametrize('prev_yaw, cur_yaw', [(10.0, 25.0), (359.0, 1.0), (-170.0, 175.0)])
def test_ego_motion_is_the_global_can_bus_delta(prev_yaw, cur_yaw):
    meta, prev2cur, prev_ego, cur_ego = frame_pair((100.0, 50.0), prev_yaw, (103.0, 48.5), cur_yaw)
    delta, delta_yaw, yaw = uniad_ego_motion([meta], prev2cur, torch.tensor([True]))
    ref_delta, ref_delta_yaw, ref_yaw = official_can_bus_deltas(prev_ego, cur_ego)
    np.testing.assert_allclose(delta[0].numpy(), ref_delta, atol=1e-9)
    assert delta_yaw.item() == pytest.approx(ref_delta_yaw, abs=1e-9)  # not wrapped: 359 -> 1 gives -358
    assert yaw.item() == pytest.approx(ref_yaw, abs=1e-9)
    no_history = uniad_ego_motion([meta], torch.zeros(1, 4, 4, dtype=torch.float64), torch.tensor([False]))
    assert no_history[0].abs().sum() == 0 and no_history[1].abs().sum() == 0


def test_reference_shift_matches_bevformer_formula():
    delta = torch.tensor([[3.0, -1.5, 0.2], [0.0, 0.0, 0.0], [-2.0, 4.0, 0.0]], dtype=torch.float64)
    yaw = torch.tensor([30.0, 100.0, 250.0], dtype=torch.float64)
    shift = uniad_reference_shift(delta, yaw, PC_RANGE)
    # PerceptionTransformer.get_bev_features with grid_length = (real_h / bev_h, real_w / bev_w)
    dx, dy, ego_angle = delta[:, 0].numpy(), delta[:, 1].numpy(), yaw.numpy()
    real_w, real_h = PC_RANGE[3] - PC_RANGE[0], PC_RANGE[4] - PC_RANGE[1]
    length = np.sqrt(dx ** 2 + dy ** 2)
    bev_angle = ego_angle - np.arctan2(dy, dx) / np.pi * 180
    shift_y = length * np.cos(bev_angle / 180 * np.pi) / (real_h / BEV_H) / BEV_H
    shift_x = length * np.sin(bev_angle / 180 * np.pi) / (real_w / BEV_W) / BEV_W
    np.testing.assert_allclose(shift.numpy(), np.stack([shift_x, shift_y], 1), atol=1e-12)


def torchvision_rotate_nearest(img, angle, center):
    """torchvision.transforms.functional.rotate(img [C, H, W], angle, NEAREST, center) in float64, step by step:
    _get_inverse_affine_matrix(center_f, -angle, ...), _gen_affine_grid, grid_sample(align_corners=False)."""
    _, height, width = img.shape
    cx, cy = center[0] - width * 0.5, center[1] - height * 0.5
    rot = math.radians(-angle)
    a, b, c, d = math.cos(rot), -math.sin(rot), math.sin(rot), math.cos(rot)
    m = [d, -b, 0.0, -c, a, 0.0]
    m[2] += m[0] * -cx + m[1] * -cy + cx
    m[5] += m[3] * -cx + m[4] * -cy + cy
    theta = torch.tensor(m, dtype=torch.float64).view(1, 2, 3)
    xs = torch.linspace(-width * 0.5 + 0.5, width * 0.5 - 0.5, width, dtype=torch.float64)
    ys = torch.linspace(-height * 0.5 + 0.5, height * 0.5 - 0.5, height, dtype=torch.float64)
    base = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None], torch.ones(1, 1, dtype=torch.float64)), -1)
    grid = base.view(1, -1, 3) @ (theta.transpose(1, 2) / torch.tensor([0.5 * width, 0.5 * height],
                                                                       dtype=torch.float64))
    return F.grid_sample(img[None], grid.view(1, height, width, 2), mode='nearest', padding_mode='zeros',
                         align_corners=False)[0]


@pytest.mark.parametrize('angle', [17.3, -95.1, 3.0])
def test_rotation_matches_torchvision(angle):
    bev = torch.randn(1, BEV_H * BEV_W, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = rotate_bev_nearest(bev, torch.tensor([angle]), BEV_H, BEV_W)
    img = bev[0].reshape(BEV_H, BEV_W, 5).permute(2, 0, 1)
    ref = torchvision_rotate_nearest(img, angle, [BEV_W // 2, BEV_H // 2]).permute(1, 2, 0).reshape(-1, 5)
    torch.testing.assert_close(ours[0], ref, rtol=0, atol=0)
    assert (ref != 0).sum() > 0.5 * ref.numel() and ((ref == 0).any() or abs(angle) < 10)


def official_tsa(tsa, query, query_pos, value, reference):
    """BEVFormer's TemporalSelfAttention.forward for bs = 1: ``value`` [2, HW, C] (previous, current queue),
    ``reference`` [2, HW, 1, 2]."""
    heads, points = tsa.num_heads, tsa.num_points
    num_query, channels = query.shape[1:]
    proj_in = torch.cat([value[:1], query + query_pos], -1)
    values = tsa.value_proj(value).reshape(2, num_query, heads, -1)
    offsets = tsa.sampling_offsets(proj_in).view(1, num_query, heads, 2, 1, points, 2)
    weights = tsa.attention_weights(proj_in).view(1, num_query, heads, 2, points).softmax(-1)
    weights = weights.view(1, num_query, heads, 2, 1, points).permute(0, 3, 1, 2, 4, 5).reshape(2, num_query, heads,
                                                                                                1, points)
    offsets = offsets.permute(0, 3, 1, 2, 4, 5, 6).reshape(2, num_query, heads, 1, points, 2)
    normaliser = torch.tensor([[BEV_W, BEV_H]], dtype=torch.float64)
    locations = reference[:, :, None, :, None, :] + offsets / normaliser[None, None, None, :, None, :]
    output = multi_scale_deformable_attn_pytorch(values, torch.tensor([[BEV_H, BEV_W]]), locations, weights)
    output = output.permute(1, 2, 0).view(num_query, channels, 1, 2).mean(-1).permute(2, 0, 1)
    return tsa.output_proj(output) + query


def test_encoder_tsa_and_can_bus_follow_bevformer():
    encoder = make_encoder(compat='uniad').double().eval()
    meta, prev2cur, prev_ego, cur_ego = frame_pair((20.0, 10.0), 40.0, (21.2, 11.0), 52.0)
    meta['batch_input_shape'] = (32, 48)
    feats = [f.double() for f in make_feats(1)]
    prev_bev = torch.randn(1, BEV_H * BEV_W, C, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    captured = {}
    hooks = [encoder.layers[k].temporal_attn.register_forward_hook(
        lambda module, args, out, k=k: captured.__setitem__(k, (args, out))) for k in range(2)]
    encoder(feats, [meta], prev_bev, prev2cur)
    for hook in hooks:
        hook.remove()
    # layer-0 queries: learned queries + CAN-bus MLP of the global deltas
    ref_delta, ref_delta_yaw, ref_yaw = official_can_bus_deltas(prev_ego, cur_ego)
    can_bus = torch.as_tensor(meta['can_bus'], dtype=torch.float64).clone()
    can_bus[:3], can_bus[17] = torch.from_numpy(ref_delta), ref_delta_yaw
    query0 = encoder.bev_queries.weight[None] + encoder.can_bus_mlp(can_bus[None])[:, None, :]
    torch.testing.assert_close(captured[0][0][0], query0)
    # previous BEV rotated by the yaw change (torchvision), both queues on the shifted grid (in-place shift)
    rotated = torchvision_rotate_nearest(prev_bev[0].reshape(BEV_H, BEV_W, C).permute(2, 0, 1), ref_delta_yaw,
                                         [BEV_W // 2, BEV_H // 2]).permute(1, 2, 0).reshape(1, -1, C)
    real_w, real_h = PC_RANGE[3] - PC_RANGE[0], PC_RANGE[4] - PC_RANGE[1]
    length = math.hypot(ref_delta[0], ref_delta[1])
    bev_angle = math.radians(ref_yaw - math.degrees(math.atan2(ref_delta[1], ref_delta[0])))
    ys, xs = torch.meshgrid(torch.linspace(0.5, BEV_H - 0.5, BEV_H, dtype=torch.float64) / BEV_H,
                            torch.linspace(0.5, BEV_W - 0.5, BEV_W, dtype=torch.float64) / BEV_W, indexing='ij')
    ref_2d = torch.stack((xs.reshape(-1) + length * math.sin(bev_angle) / real_w,
                          ys.reshape(-1) + length * math.cos(bev_angle) / real_h), -1)[:, None, :]
    reference = torch.stack([ref_2d, ref_2d])
    for k in range(2):
        (query, query_pos, _), out = captured[k]
        # every layer's current queue holds the layer-0 queries (BEVFormer passes prev_bev = [prev, bev_query])
        expected = official_tsa(encoder.layers[k].temporal_attn, query, query_pos, torch.cat([rotated, query0]),
                                reference)
        torch.testing.assert_close(out, expected)
    default = make_encoder().double().eval()
    default.load_state_dict(encoder.state_dict())
    assert not torch.allclose(default(feats, [meta], prev_bev, prev2cur), encoder(feats, [meta], prev_bev, prev2cur))


def test_compat_without_history_and_bad_value():
    encoder = make_encoder(compat='uniad').double().eval()
    default = make_encoder().double().eval()
    meta, _, _, _ = frame_pair((20.0, 10.0), 40.0, (21.2, 11.0), 52.0)
    feats = [f.double() for f in make_feats(1)]
    # without history both modes are BEVFormer's first frame (zero deltas, no shift, current queries twice)
    torch.testing.assert_close(encoder(feats, [meta]), default(feats, [dict(meta, can_bus=_zero_motion(meta))]))
    with pytest.raises(ValueError, match='compat must be one of'):
        make_encoder(compat='bevformer')


def _zero_motion(meta):
    can_bus = np.array(meta['can_bus'], dtype=np.float64)
    can_bus[:3], can_bus[17] = 0.0, 0.0
    return can_bus
