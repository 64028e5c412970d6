"""TrackMapVisualizationHook (and tools/test.py --show-dir), FeatureProbe pooling and default taps."""
import importlib.util
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from test_analysis_render import PC_RANGE, make_sample
from torch import nn

from projects.nexusflow.analysis import FeatureProbe, default_taps, frame_record, record_grid, render_frame
from projects.nexusflow.engine.visualization_hook import TrackMapVisualizationHook, enable_visualization

REPO = Path(__file__).resolve().parents[2]


def camera_batch(value=60):
    imgs = torch.full((1, 6, 3, 96, 160), value, dtype=torch.uint8)  # [Q, N, 3, H, W]
    imgs[0, 2, 2] = 200  # camera 2 red channel (BGR)
    return dict(inputs=dict(img=[imgs]))


def test_hook_writes_the_rendered_frame(tmp_path):
    runner = types.SimpleNamespace(log_dir=str(tmp_path))
    hook = TrackMapVisualizationHook(draw=True, test_out_dir='vis', interval=2, point_cloud_range=PC_RANGE, scale=4,
                                     score_thr=0.5)
    hook.before_test(runner)
    sample = make_sample()
    hook.after_test_iter(runner, 1, camera_batch(), [sample])  # not a multiple of the interval
    assert not (tmp_path / 'vis' / 'scene-0001').exists()
    hook.after_test_iter(runner, 2, camera_batch(), [sample])
    written = cv2.imread(str(tmp_path / 'vis' / 'scene-0001' / '004_tok.png'))
    record = frame_record(sample, score_thr=0.5)
    images = [np.ascontiguousarray(view.permute(1, 2, 0).numpy()) for view in camera_batch()['inputs']['img'][0][-1]]
    assert images[2][0, 0].tolist() == [60, 60, 200]
    np.testing.assert_array_equal(written, render_frame(record, record_grid(record, PC_RANGE, 4), images))
    silent = TrackMapVisualizationHook(test_out_dir=str(tmp_path / 'off'))
    silent.before_test(runner)
    silent.after_test_iter(runner, 0, camera_batch(), [sample])
    assert not (tmp_path / 'off').exists()
    with pytest.raises(ValueError, match='interval must be >= 1'):
        TrackMapVisualizationHook(interval=0)


def test_show_dir_switches_the_hook_on(tmp_path):
    cfg = Config(dict(point_cloud_range=[-40.0, -40.0, -5.0, 40.0, 40.0, 3.0]))
    entry = enable_visualization(cfg, 'vis', score_thr=0.3)
    assert cfg.custom_hooks == [dict(type='NexusFlowTrackMapVisualizationHook', draw=True, test_out_dir='vis',
                                     score_thr=0.3, point_cloud_range=[-40.0, -40.0, -5.0, 40.0, 40.0, 3.0])] == [entry]
    enable_visualization(cfg, 'other')  # an existing entry is updated, not duplicated
    assert len(cfg.custom_hooks) == 1 and cfg.custom_hooks[0]['test_out_dir'] == 'other'

    spec = importlib.util.spec_from_file_location('tool_test_for_show_dir', REPO / 'tools' / 'test.py')
    test_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_tool)
    config = tmp_path / 'cfg.py'
    config.write_text("point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]\nmodel = dict(type='X')\n")
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': {}}, ckpt)
    built = test_tool.build_config(test_tool.parse_args([str(config), str(ckpt), '--show-dir', 'vis']))
    assert built.custom_hooks[0]['type'] == 'NexusFlowTrackMapVisualizationHook'
    assert built.custom_hooks[0]['draw'] is True
    assert built.custom_hooks[0]['point_cloud_range'] == [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


class ToyDecoder(nn.Module):
    def forward(self, query):
        refs = torch.sigmoid(query[..., :3])
        return torch.stack([query, 2 * query]), torch.stack([refs, refs])  # L = 2 layers


class ToyHost(nn.Module):
    def __init__(self):
        super().__init__()
        self.bev_encoder = nn.Linear(3, 4)
        self.bev_encoder.bev_h, self.bev_encoder.bev_w = 2, 3
        self.track_head = nn.Module()
        self.track_head.decoder = ToyDecoder()
        self.map_head = None

    def forward(self, cells, query):
        return self.bev_encoder(cells), self.track_head.decoder(query)


def test_feature_probe_pools_each_tap_per_sample():
    host = ToyHost()
    taps = default_taps(host)
    assert taps == dict(bev=dict(module='bev_encoder', kind='bev', bev_shape=(2, 3)),
                        track=dict(module='track_head.decoder', kind='queries'))
    probe = FeatureProbe(taps)
    probe.attach(host)
    cells, query = torch.randn(1, 6, 3), torch.randn(1, 5, 4)
    bev, (states, _) = host(cells, query)
    pooled = probe.pooled()
    torch.testing.assert_close(pooled['bev'], bev.mean(dim=1))
    torch.testing.assert_close(pooled['track'], states[-1].mean(dim=1))  # the last decoder layer = 2 * query
    torch.testing.assert_close(pooled['track'], 2 * query.mean(dim=1))
    assert probe.loss() == {} and probe._records == {}
    host(torch.randn(2, 6, 3), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="tap 'track' is a query set of a batch of 2 samples without a padding mask"):
        probe.pooled()
    probe.detach()
    with pytest.raises(TypeError, match='bev_encoder.bev_h'):
        default_taps(nn.Linear(2, 2))
