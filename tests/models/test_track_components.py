"""Unit tests of the track head's parts: box coder, geometry, container, matcher, tracker, QIM, memory bank."""
import math

import numpy as np
import pytest
import torch
from mmdet.models.layers.transformer import inverse_sigmoid

from projects.nexusflow.core.frames import relative_pose
from projects.nexusflow.models.uniad.track import (EGO_ID, FREE_ID, ClipMatcher, QueryInteractionModule,
                                                   RuntimeTracker, TrackBoxCoder, TrackInstances, TrackMemoryBank,
                                                   ego_box_in_lidar, ego_velocity_in_lidar,
                                                   propagate_reference_points)
from projects.nexusflow.models.uniad.track.instances import pad_stack, padding_mask

PCR = (-10.0, -10.0, -3.0, 10.0, 10.0, 3.0)


def _pose(x, y, yaw):
    mat = np.eye(4)
    mat[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    mat[:2, 3] = [x, y]
    return mat


# ----------------------------------------------------------------------------- box coder
def test_box_coder_round_trip_with_yaw_wrap():
    gen = torch.Generator().manual_seed(0)
    boxes = torch.cat([torch.rand(200, 3, generator=gen) * 20 - 10, torch.rand(200, 3, generator=gen) * 5 + 0.2,
                       torch.rand(200, 1, generator=gen) * 6 * math.pi - 3 * math.pi,
                       torch.randn(200, 2, generator=gen)], dim=1).double()
    coder = TrackBoxCoder(PCR)
    decoded = coder.decode(coder.encode(boxes))
    assert torch.allclose(decoded[:, [0, 1, 2, 3, 4, 5, 7, 8]], boxes[:, [0, 1, 2, 3, 4, 5, 7, 8]], atol=1e-5)
    wrapped = torch.remainder(decoded[:, 6] - boxes[:, 6] + math.pi, 2 * math.pi) - math.pi
    assert wrapped.abs().max() < 1e-5
    assert decoded[:, 6].min() > -math.pi and decoded[:, 6].max() <= math.pi
    codes = coder.encode(boxes)
    assert torch.allclose(coder.encode(coder.decode(codes)), codes, atol=1e-5)


def test_box_coder_values_and_refine():
    coder = TrackBoxCoder(PCR)
    box = torch.tensor([[1.0, 2.0, -1.0, 4.0, 2.0, 1.5, math.pi, 3.0, -1.0]])
    code = coder.encode(box)[0]
    expected = [1.0, 2.0, math.log(4.0), math.log(2.0), -0.25, math.log(1.5), 0.0, -1.0, 3.0, -1.0]
    assert torch.allclose(code, torch.tensor(expected), atol=1e-6)
    yaw = coder.decode(code[None])[0, 6]                                 # pi, up to float32 rounding of sin(pi)
    assert abs(math.remainder(float(yaw) - math.pi, 2 * math.pi)) < 1e-6
    assert coder.decode(coder.encode(torch.tensor([[0, 0, 0, 1, 1, 1, -math.pi, 0, 0]], dtype=torch.float64)))[0, 6] \
        == pytest.approx(math.pi)                                        # exactly -pi maps to +pi
    unit = torch.tensor([[0.25, 0.5, 0.75]])
    deltas = torch.zeros(1, 10)
    deltas[0, 2] = 0.7
    refined = coder.refine(deltas, inverse_sigmoid(unit))
    assert torch.allclose(refined[0, [0, 1, 4]], torch.tensor([-5.0, 0.0, 1.5]), atol=1e-5)
    assert refined[0, 2] == pytest.approx(0.7)
    with pytest.raises(ValueError, match='9 values'):
        coder.encode(torch.zeros(2, 7))
    with pytest.raises(ValueError, match='maxima'):
        TrackBoxCoder((0, 0, 0, -1, 1, 1))


# ----------------------------------------------------------------------------- geometry
def test_velocity_propagation_hand_computed():
    """Point (2, 3, 0) m moving (1, -2) m/s for 0.5 s -> (2.5, 2, 0); the LiDAR moves by (1, 0) and turns 90 deg
    left, so the point is at R(-90) (1.5, 2) = (2, -1.5) in the new frame."""
    coder = TrackBoxCoder(PCR)
    ref = inverse_sigmoid(coder.to_unit(torch.tensor([[2.0, 3.0, 0.0]])))
    prev2cur = relative_pose(torch.eye(4, dtype=torch.float64), torch.as_tensor(_pose(1.0, 0.0, math.pi / 2)))
    moved = propagate_reference_points(ref, torch.tensor([[1.0, -2.0]]), prev2cur, 0.5, coder)
    assert torch.allclose(coder.to_metric(moved.sigmoid()), torch.tensor([[2.0, -1.5, 0.0]]), atol=1e-4)


def test_ego_box_and_velocity():
    lidar2ego = np.eye(4)
    lidar2ego[:3, :3] = [[0, 1, 0], [-1, 0, 0], [0, 0, 1]]      # LiDAR y = ego x (forward)
    lidar2ego[:3, 3] = [0.9, 0.0, 1.8]
    metas = [dict(ego2global=_pose(100.0 + 5.0 * t, 50.0, 0.0), lidar2ego=lidar2ego, timestamp=10.0 + 0.5 * t)
             for t in range(3)]
    # the ego drives 10 m/s along its x axis = LiDAR +y; forward difference, then backward on the last frame
    for index in range(3):
        assert ego_velocity_in_lidar(metas, index) == pytest.approx((0.0, 10.0), abs=1e-9)
    assert ego_velocity_in_lidar(metas[:1], 0) == (0.0, 0.0)
    box = ego_box_in_lidar(metas[0], (0.0, 10.0), (4.08, 1.73, 1.56))
    # ego origin in the LiDAR frame: -R^T t = (0, -0.9, -1.8) (0.9 m behind, 1.8 m below); heading +y = pi / 2
    assert torch.allclose(box, torch.tensor([0.0, -0.9, -1.8, 4.08, 1.73, 1.56, math.pi / 2, 0.0, 10.0]), atol=1e-6)
    with pytest.raises(ValueError, match='increase'):
        ego_velocity_in_lidar([metas[1], metas[0]], 0)


# ----------------------------------------------------------------------------- container
def test_track_instances_indexing_cat_and_padding():
    tracks = TrackInstances(obj_ids=torch.tensor([3, -1, 5]), query=torch.arange(6.).view(3, 2))
    live = tracks[tracks.obj_ids >= 0]
    assert live.obj_ids.tolist() == [3, 5] and live.query.tolist() == [[0., 1.], [4., 5.]]
    assert len(tracks[1]) == 1 and tracks[1].obj_ids.tolist() == [-1]
    both = TrackInstances.cat([tracks, live])
    assert both.obj_ids.tolist() == [3, -1, 5, 3, 5]
    with pytest.raises(ValueError, match='rows'):
        tracks.scores = torch.zeros(2)
    with pytest.raises(KeyError):
        TrackInstances.cat([tracks, TrackInstances(obj_ids=torch.tensor([1]))])
    padded = pad_stack([tracks, live], 'query')
    assert padded.shape == (2, 3, 2) and padded[1, 2].tolist() == [0., 0.]
    assert padding_mask([tracks, live]).tolist() == [[False, False, False], [False, False, True]]


# ----------------------------------------------------------------------------- matcher
def _codes(xy):
    codes = torch.zeros(len(xy), 10)
    codes[:, :2] = torch.tensor(xy, dtype=torch.float32)
    return codes


def test_hungarian_exact_assignment_beats_greedy():
    """Costs (L1 on x, y): p0-g0 1, p0-g1 2, p1-g0 1.5, p1-g1 4.5; greedy p0->g0 costs 5.5, optimum p0->g1,
    p1->g0 costs 3.5. Equal logits make the class cost constant per GT."""
    matcher = ClipMatcher()
    obj_ids = torch.full((3, ), FREE_ID)
    gt_index = matcher.match(obj_ids, torch.zeros(3, 10), _codes([[0, 0], [2.5, 0], [100, 100]]),
                             torch.tensor([11, 12]), torch.tensor([0, 0]), _codes([[1, 0], [0, 2]]))
    assert gt_index.tolist() == [1, 0, -1]


def test_matcher_keeps_ids_across_frames_and_matches_new_gt():
    matcher = ClipMatcher()
    logits = torch.zeros(5, 10)
    # frame 0: everything free; queries 1 and 3 sit on the two GT boxes
    obj_ids = torch.tensor([FREE_ID, FREE_ID, FREE_ID, FREE_ID, EGO_ID])
    gt_ids = torch.tensor([7, 3])
    gt_index = matcher.match(obj_ids, logits, _codes([[50, 50], [5, 5], [-40, 0], [-5, -5], [0, 0]]), gt_ids,
                             torch.tensor([0, 1]), _codes([[5, 5], [-5, -5]]))
    assert gt_index.tolist() == [-1, 0, -1, 1, -1]
    obj_ids = torch.where(gt_index >= 0, gt_ids[gt_index.clamp(min=0)], obj_ids)
    assert obj_ids.tolist() == [FREE_ID, 7, FREE_ID, 3, EGO_ID]
    # frame 1: GT reordered, object 3 gone, new object 9 exactly where tracked query 1 predicts; the tracked
    # queries still take their own ids' boxes (or background), the new GT goes to the nearest FREE query
    gt_ids = torch.tensor([9, 7])
    codes = _codes([[30, 30], [-20, -20], [-30, -30], [-5, -5], [0, 0]])
    gt_index = matcher.match(obj_ids, logits, codes, gt_ids, torch.tensor([0, 0]), _codes([[-20, -20], [6, 6]]))
    assert gt_index.tolist() == [-1, 1, 0, -1, -1]


# ----------------------------------------------------------------------------- runtime tracker
def test_runtime_tracker_birth_sleep_death():
    tracker = RuntimeTracker(score_thresh=0.4, filter_score_thresh=0.35, miss_tolerance=3)
    obj_ids = torch.tensor([FREE_ID, FREE_ID, FREE_ID, EGO_ID])
    disappear = torch.zeros(4, dtype=torch.long)
    next_id = 10
    scores = [[0.9, 0.3, 0.5, 0.9],      # queries 0 and 2 born as 10 and 11 (query order), ego untouched
              [0.2, 0.3, 0.38, 0.9],     # 0 misses (1); 2 sits between thresholds: neither miss nor reset
              [0.1, 0.5, 0.1, 0.9],      # 0 misses (2); 1 born as 12; 2 misses (1)
              [0.6, 0.1, 0.1, 0.9],      # 0 confident again: counter reset; 1 misses (1); 2 misses (2)
              [0.1, 0.1, 0.1, 0.9]]      # 0 misses (1); 1 misses (2); 2 misses (3) -> dies
    history = []
    for frame in scores:
        obj_ids, disappear, next_id = tracker.update(obj_ids, torch.tensor(frame), disappear, next_id)
        history.append((obj_ids.tolist(), disappear.tolist()))
    assert history[0] == ([10, FREE_ID, 11, EGO_ID], [0, 0, 0, 0])
    assert history[1] == ([10, FREE_ID, 11, EGO_ID], [1, 0, 0, 0])
    assert history[2] == ([10, 12, 11, EGO_ID], [2, 0, 1, 0])
    assert history[3] == ([10, 12, 11, EGO_ID], [0, 1, 2, 0])
    assert history[4] == ([10, 12, FREE_ID, EGO_ID], [1, 2, 3, 0])
    assert next_id == 13


# ----------------------------------------------------------------------------- QIM and memory bank
def _tracks(obj_ids, scores, dims=8, mem_len=2):
    num = len(obj_ids)
    gen = torch.Generator().manual_seed(1)
    return TrackInstances(query=torch.randn(num, 2 * dims, generator=gen), obj_ids=torch.tensor(obj_ids),
                          scores=torch.tensor(scores), output_embedding=torch.randn(num, dims, generator=gen),
                          mem_bank=torch.zeros(num, mem_len, dims), save_period=torch.zeros(num, dtype=torch.long),
                          mem_padding_mask=torch.ones(num, mem_len, dtype=torch.bool))


def test_qim_selection_and_update():
    qim = QueryInteractionModule(embed_dims=8, num_heads=2, fp_ratio=1.0, random_drop=0.0)
    qim.init_weights()
    tracks = _tracks([4, FREE_ID, FREE_ID, EGO_ID, 6, FREE_ID], [0.9, 0.2, 0.7, 0.99, 0.8, 0.6])
    active = tracks.obj_ids >= 0
    # training with fp_ratio 1: one false positive per kept track, the best-scoring FREE queries (never the ego)
    assert qim.train().select(tracks, active).obj_ids.tolist() == [4, 6, FREE_ID, FREE_ID]
    assert qim.select(tracks, active).scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6])
    assert qim.eval().select(tracks, active).obj_ids.tolist() == [4, 6]
    carried = qim(tracks[active])
    assert carried.query.shape == (2, 16) and not torch.allclose(carried.query, tracks[active].query)
    assert len(qim(tracks[tracks.obj_ids > 100])) == 0


def test_memory_bank_save_period_and_attention():
    bank = TrackMemoryBank(embed_dims=8, num_heads=2, memory_bank_len=2, save_period=2, score_thresh=0.5).eval()
    tracks = _tracks([1, 2], [0.9, 0.1])
    out = bank(tracks)
    # nothing in memory yet: embeddings unchanged; only the confident track is saved, its period set to 2
    assert torch.equal(out.output_embedding, tracks.output_embedding)
    assert out.mem_padding_mask.tolist() == [[True, False], [True, True]]
    assert out.save_period.tolist() == [2, 0]
    assert torch.allclose(out.mem_bank[0, 1], bank.save_proj(tracks.output_embedding[0]))
    again = bank(out)
    # track 0 now attends to its memory (embedding changes) but is not saved (period 2 -> 1)
    assert not torch.allclose(again.output_embedding[0], out.output_embedding[0])
    assert torch.equal(again.output_embedding[1], out.output_embedding[1])
    assert again.save_period.tolist() == [1, 0] and torch.equal(again.mem_bank, out.mem_bank)
    # training saves every query above the threshold every frame
    trained = bank.train()(again)
    assert trained.mem_padding_mask.tolist() == [[False, False], [True, True]]
