"""Contract check: the track head consumes the data samples of the real pipeline on the synthetic nuScenes set."""
import numpy as np
import pytest
import torch

from mmdet3d.registry import MODELS
from projects.nexusflow.models.uniad.track import TrackBoxCoder, clip_targets

RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


@pytest.fixture(scope='module')
def clip_frames(synthetic_root, synthetic_infos):
    """Two training items (3-frame clips) from the dataset, frame-major: ``frames[f][b]``."""
    from projects.nexusflow.datasets import NuScenesTrackMapDataset
    pipeline = [dict(type='NexusFlowLoadMultiViewImages'),
                dict(type='NexusFlowResizeMultiViewImages', scale=(200, 112)),
                dict(type='NexusFlowLoadTrackAnnotations3D'),
                dict(type='NexusFlowTrackObjectRangeFilter', point_cloud_range=RANGE),
                dict(type='NexusFlowPackTrackMapInputs')]
    dataset = NuScenesTrackMapDataset(data_root=str(synthetic_root), ann_file=synthetic_infos['train'],
                                      queue_length=3, version='v1.0-synth', pipeline=pipeline)
    items = [dataset[0], dataset[len(dataset) - 1]]
    return [[item['data_samples'][f] for item in items] for f in range(3)]


def test_targets_and_losses_from_pipeline_samples(clip_frames):
    coder = TrackBoxCoder(RANGE)
    targets = clip_targets(clip_frames, coder, 10, torch.device('cpu'), (4.08, 1.73, 1.56), 0)
    for frame, row in zip(clip_frames, targets):
        for sample, target in zip(frame, row):
            gt = sample.gt_instances_3d
            assert len(target) == len(gt) > 0 and target.weight == 1.0
            assert torch.equal(target.ids, gt.instance_ids) and torch.equal(target.labels, gt.labels_3d)
            assert torch.allclose(coder.decode(target.codes)[:, :6], gt.bboxes_3d.tensor[:, :6], atol=1e-4)
            ego_origin = np.linalg.inv(np.asarray(sample.metainfo['lidar2ego']))[:2, 3]
            assert torch.allclose(target.ego_code[:2], torch.as_tensor(ego_origin, dtype=torch.float32), atol=1e-5)

    torch.manual_seed(0)
    head = MODELS.build(dict(type='UniADTrackHead', num_query=30, embed_dims=32, bev_h=20, bev_w=20,
                             decoder=dict(num_layers=2, num_heads=4, num_points=4, ffn_dims=64, dropout=0.0),
                             qim=dict(num_heads=4), memory_bank=dict(num_heads=4)))
    head.init_weights()
    bevs = [torch.randn(2, 400, 32) for _ in range(3)]
    losses = head.loss(bevs, clip_frames)
    assert len(losses) == 3 * 2 * 2 + 1 and all(torch.isfinite(v) for v in losses.values())
    head.eval()
    state = head.init_state(2)
    for bev, frame in zip(bevs, clip_frames):
        results, state = head.predict(bev, state, [sample.metainfo for sample in frame])
        for result in results:
            assert len(set(result.instance_ids.tolist())) == len(result)
    assert state.scene_token == [sample.metainfo['scene_token'] for sample in clip_frames[-1]]
