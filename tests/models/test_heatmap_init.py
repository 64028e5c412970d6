"""``HeatmapQueryInit`` and the track head's ``heatmap_init`` option: targets, peaks, query placement, losses."""
import pytest
import torch

from projects.nexusflow.models.uniad.bev.geometry import bev_cell_centres, bev_xy_to_unit
from projects.nexusflow.models.uniad.track import HeatmapQueryInit
from projects.nexusflow.models.uniad.track.targets import FrameTargets

from test_track_head import C, H, OBJECTS, PCR, W, build_head, make_bev, two_sample_clip


def module(num_queries=5, **kwargs):
    torch.manual_seed(0)
    init = HeatmapQueryInit(C, 10, H, W, PCR, num_queries, **kwargs)
    init.init_weights()
    return init


def targets_of(objects, weight=1.0):
    boxes = torch.tensor([[x, y, -1.8, l, w, h, yaw, 0.0, 0.0] for x, y, l, w, h, yaw, _, _ in objects])
    labels = torch.tensor([o[6] for o in objects])
    return FrameTargets(ids=torch.arange(len(objects)), labels=labels, boxes=boxes, codes=torch.zeros(len(objects), 10),
                        ego_code=None, ego_label=0, weight=weight)


def test_targets_peak_at_the_centre_cell_of_their_class():
    heat = module().targets(targets_of(OBJECTS), 'cpu')
    assert heat.shape == (10, H, W) and heat.max() == 1.0
    for x, y, *_, label, _ in OBJECTS:
        row, col = int(y - PCR[1]), int(x - PCR[0])   # 1 m cells
        assert heat[label, row, col] == 1.0
        assert heat[label].sum() > 1.0, 'a Gaussian, not a single pixel'
    assert heat[5].sum() == 0, 'no GT of class 5'
    assert module().targets(targets_of([]), 'cpu').sum() == 0


def test_peaks_are_local_maxima_best_first_and_unit_xy_matches_the_grid():
    init = module(num_queries=3)
    logits = torch.full((1, 10, H, W), -6.0)
    logits[0, 2, 4, 7] = 3.0       # the best peak
    logits[0, 2, 4, 8] = 2.9       # its neighbour: suppressed by the 3x3 NMS
    logits[0, 7, 12, 1] = 1.0      # second peak, another class
    cells = init.peaks(logits)[0]
    assert cells[:2].tolist() == [4 * W + 7, 12 * W + 1]
    assert 4 * W + 8 not in cells[:2].tolist()
    expected = bev_xy_to_unit(bev_cell_centres(H, W, PCR)[cells], PCR)
    assert torch.allclose(init.unit_xy(cells), expected, atol=1e-6)


def test_loss_is_zero_weighted_without_labels_and_decreases_towards_the_targets():
    init = module()
    target = targets_of(OBJECTS)
    heat = init.targets(target, 'cpu')[None]
    good = torch.logit(heat.clamp(1e-3, 1 - 1e-3))
    bad = torch.zeros_like(good)
    assert init.loss(good, [target]) < 0.1 * init.loss(bad, [target])
    assert init.loss(bad, [targets_of(OBJECTS, weight=0.0)]) == 0


def test_track_radius_moves_the_peaks_away_from_carried_tracks():
    init = module(num_queries=2, track_radius=1)
    logits = torch.full((2, 10, H, W), -6.0)
    logits[:, 2, 4, 7] = 3.0       # an object that already has a track in sample 0
    logits[:, 7, 12, 1] = 1.0      # an untracked object
    logits[:, 4, 9, 9] = 0.5       # a weaker untracked object
    tracked = [init.unit_xy(torch.tensor([4 * W + 8])), None]   # a track one cell away from the first peak
    cells = init.peaks(logits, tracked)
    assert cells[0].tolist() == [12 * W + 1, 9 * W + 9], 'the tracked object gives no fresh query'
    assert cells[1].tolist() == [4 * W + 7, 12 * W + 1], 'a sample without tracks keeps its peaks'
    far = [init.unit_xy(torch.tensor([4 * W + 10])), None]     # three cells away: outside the radius
    assert init.peaks(logits, far)[0].tolist() == [4 * W + 7, 12 * W + 1]
    assert module(num_queries=2).peaks(logits, tracked)[0].tolist() == [4 * W + 7, 12 * W + 1], 'off by default'


def test_track_head_excludes_carried_tracks_from_the_fresh_queries():
    head = build_head(heatmap_init=dict(track_radius=1), qim=dict(num_heads=4, random_drop=0.0, fp_ratio=0.0)).eval()
    frames, bevs = two_sample_clip(num_frames=2, labelled=(True, True))
    metas = [[s.metainfo for s in frame] for frame in frames]
    head.tracker.score_thresh = head.tracker.filter_score_thresh = 0.0   # every query becomes a track
    _, state = head.predict(bevs[0], head.init_state(2), metas[0])
    queries = head._frame_queries(state, metas[1], bevs[1], head.heatmap_init(bevs[1]))
    for sample in queries:
        fresh, carried = sample[:head.num_query], sample[head.num_query + 1:]
        carried = carried[carried.obj_ids >= 0]
        assert len(carried) > 0
        mask = head.heatmap_init.tracked_cells([carried.ref_pts[:, :2].sigmoid()], 'cpu')[0, 0].flatten()
        unit = fresh.ref_pts[:, :2].sigmoid()
        cells = (unit[:, 1] * H).floor().long() * W + (unit[:, 0] * W).floor().long()
        free = int((mask == 0).sum())
        assert (mask[cells[:free]] == 0).all(), 'fresh queries start away from the tracks while free cells remain'


def test_track_head_places_fresh_queries_on_the_peaks():
    head = build_head(heatmap_init=dict())
    bev = make_bev(0)
    logits = head.heatmap_init(bev)
    xy, feats = head.heatmap_init.query_inputs(bev, logits)
    tracks = head._fresh_tracks(xy[0], feats[0])
    assert torch.allclose(tracks.ref_pts[:head.num_query, :2].sigmoid(), xy[0], atol=1e-5)
    plain = head._fresh_tracks()
    assert torch.equal(tracks.ref_pts[:, 2], plain.ref_pts[:, 2]), 'z stays the learned reference'
    assert torch.equal(tracks.ref_pts[head.num_query], plain.ref_pts[head.num_query]), 'the ego query is unchanged'
    assert torch.allclose(tracks.query[:head.num_query, C:] - plain.query[:head.num_query, C:], feats[0], atol=1e-6)


def test_track_head_heatmap_losses_and_gradients():
    head = build_head(heatmap_init=dict(), qim=dict(num_heads=4, random_drop=0.0, fp_ratio=0.0))
    frames, bevs = two_sample_clip(num_frames=2, labelled=(True, False))
    losses = head.loss(bevs, frames)
    assert {'frame_0_loss_heatmap', 'frame_1_loss_heatmap'} <= set(losses)
    losses['frame_1_loss_heatmap'].backward()
    assert head.heatmap_init.net[0].weight.grad.abs().sum() > 0
    assert bevs[1].grad[0].abs().sum() > 0 and bevs[1].grad[1].abs().sum() == 0, 'unlabelled sample: zero'
    head.eval()
    results, _ = head.predict(bevs[0].detach(), head.init_state(2), [s.metainfo for s in frames[0]])
    assert all(r.bboxes_3d.tensor.shape[1] == 9 for r in results)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match='nms_kernel'):
        HeatmapQueryInit(C, 10, H, W, PCR, 5, nms_kernel=2)
    with pytest.raises(ValueError, match='num_queries'):
        HeatmapQueryInit(C, 10, H, W, PCR, H * W + 1)
    with pytest.raises(ValueError, match='track_radius'):
        HeatmapQueryInit(C, 10, H, W, PCR, 5, track_radius=-1)
