"""The track head reports at most ``tracker.max_num`` boxes per frame (the highest scores)."""
import numpy as np
import pytest
import torch

from mmdet3d.registry import MODELS
from projects.nexusflow.models.uniad.track import UniADTrackHead  # noqa: F401  (registers the modules)
from projects.nexusflow.models.uniad.track.instances import FREE_ID
from projects.nexusflow.models.uniad.track.tracker import RuntimeTracker

LIDAR2EGO = np.array([[0.0, 1.0, 0.0, 0.9], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.8], [0.0, 0.0, 0.0, 1.0]])


def test_output_indices_keep_the_top_scores_in_query_order():
    tracker = RuntimeTracker(filter_score_thresh=0.35, max_num=2)
    obj_ids = torch.tensor([0, 1, FREE_ID, 2, 3, -2])
    scores = torch.tensor([0.5, 0.9, 0.99, 0.3, 0.7, 0.95])
    assert tracker.output_indices(obj_ids, scores).tolist() == [1, 4]
    assert RuntimeTracker(max_num=300).output_indices(obj_ids, scores).tolist() == [0, 1, 4]
    with pytest.raises(ValueError, match=r'max_num must be in \[1, 500\] \(the nuScenes evaluation limit'):
        RuntimeTracker(max_num=501)


def test_predict_caps_a_low_threshold_frame():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='UniADTrackHead', num_query=20, embed_dims=32, bev_h=8, bev_w=8,
                             point_cloud_range=(-8.0, -8.0, -3.0, 8.0, 8.0, 3.0),
                             decoder=dict(num_layers=1, num_heads=4, num_points=2, ffn_dims=32, dropout=0.0),
                             qim=dict(num_heads=4), memory_bank=dict(num_heads=4),
                             tracker=dict(score_thresh=0.0, filter_score_thresh=0.0, max_num=5))).eval()
    meta = dict(ego2global=np.eye(4), lidar2ego=LIDAR2EGO, timestamp=1.0, scene_token='s')
    with torch.no_grad():
        results, state = head.predict(torch.randn(1, 64, 32), head.init_state(1), [meta])
    live = state.tracks[0][state.tracks[0].obj_ids >= 0]
    assert len(live) == 20  # every query was born: the cap limits the output, not the tracker
    assert len(results[0].scores_3d) == 5
    assert torch.equal(results[0].scores_3d.sort(descending=True).values, live.scores.topk(5).values)
