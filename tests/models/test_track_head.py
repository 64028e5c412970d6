"""Behaviour of ``UniADTrackHead``: shapes and the decoder tap, batching, label masks, state, and an overfit run."""
import json

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from projects.nexusflow.models.uniad.track import UniADTrackHead  # noqa: F401  (registers the modules)

PCR = (-8.0, -8.0, -3.0, 8.0, 8.0, 3.0)
H = W = 16
C = 32
LIDAR2EGO = np.array([[0.0, 1.0, 0.0, 0.9], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.8], [0.0, 0.0, 0.0, 1.0]])
# static objects in frame-0 LiDAR coordinates: (x, y, l, w, h, yaw, label, instance id); bottom z = -1.8 m
OBJECTS = [(2.5, 3.5, 4.0, 1.8, 1.5, 0.3, 0, 11), (-4.5, -2.5, 0.8, 0.7, 1.8, 1.2, 8, 12),
           (-3.5, 4.5, 6.0, 2.5, 3.0, -2.0, 1, 13)]
EGO_FORWARD = [0.0, 1.0, 1.0]      # metres driven by frame; ego x (forward) is LiDAR +y


def build_head(**overrides):
    cfg = dict(type='UniADTrackHead', num_query=20, embed_dims=C, bev_h=H, bev_w=W, point_cloud_range=PCR,
               decoder=dict(num_layers=2, num_heads=4, num_points=4, ffn_dims=64, dropout=0.0),
               qim=dict(num_heads=4), memory_bank=dict(num_heads=4))
    cfg.update(overrides)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def frame_boxes(frame, objects=OBJECTS):
    return torch.tensor([[x, y - EGO_FORWARD[frame], -1.8, l, w, h, yaw, 0.0, 0.0]
                         for x, y, l, w, h, yaw, _, _ in objects])


def make_sample(frame, objects=OBJECTS, labelled=True, scene='scene-a'):
    """A frame's data sample; ``labelled=None`` leaves ``has_track_gt`` out of the metainfo."""
    ego2global = np.eye(4)
    ego2global[0, 3] = EGO_FORWARD[frame]
    metainfo = dict(ego2global=ego2global, lidar2ego=LIDAR2EGO, timestamp=100.0 + 0.5 * frame, scene_token=scene)
    if labelled is not None:
        metainfo['has_track_gt'] = labelled
    sample = Det3DDataSample(metainfo=metainfo)
    sample.gt_instances_3d = InstanceData(
        bboxes_3d=LiDARInstance3DBoxes(frame_boxes(frame, objects).reshape(-1, 9), box_dim=9),
        labels_3d=torch.tensor([o[6] for o in objects], dtype=torch.long),
        instance_ids=torch.tensor([o[7] for o in objects], dtype=torch.long))
    return sample


def make_bev(frame, objects=OBJECTS, seed=0):
    """Fixed random features plus one signature vector per object at the cell holding its centre."""
    gen = torch.Generator().manual_seed(seed)
    bev = 0.3 * torch.randn(H * W, C, generator=gen)
    signatures = 2.0 * torch.randn(len(OBJECTS), C, generator=gen)
    for signature, (x, y) in zip(signatures, frame_boxes(frame, objects)[:, :2].tolist()):
        bev[int(y - PCR[1]) * W + int(x - PCR[0])] += signature
    return bev[None]


def two_sample_clip(num_frames=2, labelled=(True, True)):
    objects = [OBJECTS[:2], OBJECTS]
    frames = [[make_sample(f, objects[b], labelled[b], scene=f'scene-{b}') for b in range(2)]
              for f in range(num_frames)]
    bevs = [torch.cat([make_bev(f, objects[b], seed=b) for b in range(2)]).requires_grad_() for f in range(num_frames)]
    return frames, bevs


DETERMINISTIC = dict(qim=dict(num_heads=4, random_drop=0.0, fp_ratio=0.0), gt_iou_threshold=0.0)


def test_decoder_tap_shapes_loss_keys_and_carried_queries():
    head = build_head(**DETERMINISTIC)
    taps = []
    head.decoder.register_forward_hook(lambda module, args, output: taps.append(output))
    frames, bevs = two_sample_clip(num_frames=3)
    losses = head.loss(bevs, frames)
    assert sorted(losses) == sorted([f'frame_{f}_loss_{kind}_{d}' for f in range(3) for kind in ('cls', 'bbox')
                                     for d in range(2)] + ['loss_ddp_coverage'])
    assert losses['loss_ddp_coverage'].item() == 0.0 and losses['loss_ddp_coverage'].requires_grad
    assert all(v.dtype == torch.float32 and v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    # 20 object queries + 1 ego; every matched track is carried (IoU threshold 0): sample 1 has 3 GT -> pad to 24
    assert [tuple(states.shape) for states, _ in taps] == [(2, 2, 21, C), (2, 2, 24, C), (2, 2, 24, C)]
    for states, references in taps:
        assert references.shape == states.shape[:3] + (3, )
        assert references.min() >= 0 and references.max() <= 1 and not references.requires_grad

    head.eval()
    taps.clear()
    state = head.init_state(2)
    results, state = head.predict(bevs[0].detach(), state, [s.metainfo for s in frames[0]])
    assert [tuple(t.shape) for t in taps[0]] == [(2, 2, 21, C), (2, 2, 21, 3)]
    for result in results:
        assert isinstance(result.bboxes_3d, LiDARInstance3DBoxes) and result.bboxes_3d.tensor.shape[1] == 9
        assert len(result.scores_3d) == len(result.labels_3d) == len(result.instance_ids) == len(result.bboxes_3d)


@pytest.mark.parametrize('with_ego_query', [True, False])
def test_batch_losses_combine_per_sample_losses(with_ego_query):
    """Batch loss = sum_b n_b L_b / sum_b n_b with n_b = GT boxes (+ 1 ego box), L_b the sample alone."""
    head = build_head(with_ego_query=with_ego_query, **DETERMINISTIC)
    frames, bevs = two_sample_clip(num_frames=3)
    batch = head.loss(bevs, frames)
    singles = [head.loss([bev[b:b + 1] for bev in bevs], [[frame[b]] for frame in frames]) for b in range(2)]
    counts = [2 + with_ego_query, 3 + with_ego_query]
    for key, value in batch.items():
        combined = sum(n * single[key] for n, single in zip(counts, singles)) / sum(counts)
        assert value.item() == pytest.approx(combined.item(), rel=1e-4, abs=1e-6), key


def test_unlabelled_sample_contributes_exactly_zero():
    head = build_head(**DETERMINISTIC)
    frames, bevs = two_sample_clip(num_frames=2, labelled=(True, False))
    mixed = head.loss(bevs, frames)
    sum(mixed.values()).backward()
    alone = head.loss([bev[:1].detach() for bev in bevs], [[frame[0]] for frame in frames])
    for key, value in mixed.items():
        assert value.item() == pytest.approx(alone[key].item(), rel=1e-5), key
    for bev in bevs:
        assert torch.count_nonzero(bev.grad[1]) == 0 and torch.count_nonzero(bev.grad[0]) > 0

    head.zero_grad(set_to_none=True)
    only_unlabelled = head.loss([bev[1:].detach() for bev in bevs], [[frame[1]] for frame in frames])
    assert all(value.item() == 0.0 for value in only_unlabelled.values())
    sum(only_unlabelled.values()).backward()
    grads = {name: p.grad for name, p in head.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert all(torch.count_nonzero(g) == 0 for g in grads.values())


def test_state_reset_scene_change_and_input_checks():
    head = build_head().eval()
    state = head.init_state(1)
    bev = make_bev(0)
    _, state = head.predict(bev, state, [make_sample(0).metainfo])
    assert state.scene_token == ['scene-a'] and state.timestamp == [100.0] and state.tracks[0] is not None
    assert torch.allclose(state.lidar2global[0], torch.as_tensor(LIDAR2EGO))
    with pytest.raises(ValueError, match='state.reset'):
        head.predict(bev, state, [make_sample(1, scene='scene-b').metainfo])
    state.next_id[0] = 7
    state.reset(0)
    assert state.tracks == [None] and state.scene_token == [None] and state.next_id == [0]
    with pytest.raises(ValueError, match='no previous frame'):
        state.prev2cur(0, LIDAR2EGO)
    _, state = head.predict(bev, state, [make_sample(1, scene='scene-b').metainfo])
    with pytest.raises(ValueError, match='bev must be'):
        head.predict(bev[:, :10], state, [make_sample(1, scene='scene-b').metainfo])
    with pytest.raises(KeyError, match='has_track_gt'):
        head.train().loss([bev], [[make_sample(0, labelled=None)]])


def test_losses_stay_fp32_under_autocast():
    head = build_head()
    frames, bevs = two_sample_clip(num_frames=2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = head.loss(bevs, frames)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())


def test_overfit_then_track_three_frames():
    """Fit a 2-frame clip (the ego drives 1 m), then track 3 frames (the ego stops): every object is found within
    1 m with the right class and keeps its id.

    Every matched query is carried in training (``gt_iou_threshold=0``): with the default threshold the pedestrian's
    small box may stay under it, so frame 1 would train a fresh query to detect the pedestrian while inference
    carries its track, and the fresh query would add a duplicate (seen on some CPUs)."""
    head = build_head(gt_iou_threshold=0.0)
    frames = [[make_sample(0)], [make_sample(1)]]
    bevs = [make_bev(0), make_bev(1)]
    optimizer = torch.optim.Adam(head.parameters(), lr=2e-3)
    totals = []
    for _ in range(300):
        total = sum(head.loss(bevs, frames).values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert np.mean(totals[-10:]) < totals[0] / 10

    head.eval()
    state, batch_state = head.init_state(1), head.init_state(2)
    second = [(0, 'scene-b'), (0, 'scene-c'), (1, 'scene-c')]     # sample 1 restarts in a new scene at step 1
    ids_per_frame, second_ids = [], []
    for frame in range(3):
        (result, ), state = head.predict(make_bev(frame), state, [make_sample(frame).metainfo])
        # the same frame batched with a sequence that restarts (0 vs 3 carried tracks: padded queries) gives the
        # same result for the first sample; the restarted sample's ids restart at 0 with its new scene
        if frame == 1:
            batch_state.reset(1)
        metas = [make_sample(frame).metainfo, make_sample(second[frame][0], scene=second[frame][1]).metainfo]
        bev = torch.cat([make_bev(frame), make_bev(second[frame][0])])
        batch, batch_state = head.predict(bev, batch_state, metas)
        assert batch[0].instance_ids.tolist() == result.instance_ids.tolist()
        assert torch.allclose(batch[0].bboxes_3d.tensor, result.bboxes_3d.tensor, atol=1e-4)
        second_ids.append(sorted(batch[1].instance_ids.tolist()))
        gt = frame_boxes(frame)
        assert len(result) == len(OBJECTS)
        distance = torch.cdist(gt[:, :2], result.bboxes_3d.tensor[:, :2])             # [GT, predictions]
        nearest = distance.argmin(dim=1)
        assert distance.min(dim=1).values.max() < 1.0
        assert sorted(nearest.tolist()) == [0, 1, 2]
        assert result.labels_3d[nearest].tolist() == [o[6] for o in OBJECTS]
        ids_per_frame.append(result.instance_ids[nearest].tolist())
    assert ids_per_frame[0] == ids_per_frame[1] == ids_per_frame[2]
    assert len(set(ids_per_frame[0])) == len(OBJECTS)
    assert second_ids == [[0, 1, 2], [0, 1, 2], [0, 1, 2]]


def test_ids_restart_per_scene_so_results_do_not_depend_on_the_process_split():
    """Every query is born (thresholds 0). Scene b's results are byte-identical whether it follows scene a in one
    test process or runs alone in a second one; ids restart at 0 per scene and are unique within it."""
    head = build_head(tracker=dict(score_thresh=0.0, filter_score_thresh=0.0, miss_tolerance=5)).eval()
    scenes = {'scene-a': (0, 1, 2), 'scene-b': (1, 2)}

    def run(scene_names):
        state, results = head.init_state(1), {}
        for scene in scene_names:
            state.reset(0)  # what the detector does when the stream starts a new scene
            for frame in scenes[scene]:
                (result, ), state = head.predict(make_bev(frame, seed=frame + 10 * scene.endswith('b')), state,
                                                 [make_sample(frame, scene=scene).metainfo])
                results[f'{scene}/{frame}'] = dict(ids=result.instance_ids.tolist(), scores=result.scores_3d.tolist(),
                                                   boxes=result.bboxes_3d.tensor.tolist())
        return results

    one_process = run(['scene-a', 'scene-b'])
    scene_b_alone = run(['scene-b'])
    assert json.dumps(one_process['scene-b/1']) == json.dumps(scene_b_alone['scene-b/1'])
    assert json.dumps(one_process['scene-b/2']) == json.dumps(scene_b_alone['scene-b/2'])
    for scene, first in (('scene-a', 0), ('scene-b', 1)):
        born = one_process[f'{scene}/{first}']['ids']
        assert sorted(born) == list(range(20))  # 20 object queries born, the ego query never gets an id
        ids = one_process[f'{scene}/{first + 1}']['ids']
        assert len(set(ids)) == len(ids) == 40 and set(born) <= set(ids) and max(ids) == 39
