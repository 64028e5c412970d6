"""TrackMapVisualizationHook (and tools/test.py --show / --show-dir / --out), FeatureProbe pooling, default taps."""
import importlib.util
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.visualization import Visualizer
from test_analysis_render import PC_RANGE, make_sample
from torch import nn

from projects.nexusflow.analysis import FeatureProbe, default_taps, frame_record, record_grid, render_frame
from projects.nexusflow.engine.visualization_hook import TrackMapVisualizationHook, enable_visualization
from projects.nexusflow.visualization import TrackMapLocalVisualizer

REPO = Path(__file__).resolve().parents[2]


def camera_batch(value=60):
    imgs = torch.full((1, 6, 3, 96, 160), value, dtype=torch.uint8)  # [Q, N, 3, H, W]
    imgs[0, 2, 2] = 200  # camera 2 red channel (BGR)
    return dict(inputs=dict(img=[imgs]))


def batch_views():
    """The BGR ``[H, W, 3]`` views of ``camera_batch`` as the renderer takes them."""
    return [np.ascontiguousarray(view.permute(1, 2, 0).numpy()) for view in camera_batch()['inputs']['img'][0][-1]]


def test_hook_draws_through_the_visualizer(tmp_path):
    TrackMapLocalVisualizer.get_instance('hook_test', vis_backends=[dict(type='LocalVisBackend')],
                                         save_dir=str(tmp_path), scale=4)  # -> vis_data/
    runner = types.SimpleNamespace(log_dir=str(tmp_path), iter=0)
    hook = TrackMapVisualizationHook(draw=True, test_out_dir='vis', score_thr=0.5)
    hook.before_test(runner)
    sample = make_sample()
    hook.after_test_iter(runner, 0, camera_batch(), [sample])
    written = cv2.imread(str(tmp_path / 'vis' / 'scene-0001' / '004_tok.png'))
    record = frame_record(sample, score_thr=0.5)
    assert batch_views()[2][0, 0].tolist() == [60, 60, 200]
    expected = render_frame(record, record_grid(record, PC_RANGE, 4), batch_views())
    np.testing.assert_array_equal(written, expected)
    assert not (tmp_path / 'vis_data' / 'vis_image').exists()  # test_out_dir: files instead of the backends

    to_backends = TrackMapVisualizationHook(draw=True, interval=2, score_thr=0.5)
    to_backends.before_test(runner)
    two = dict(inputs=dict(img=camera_batch()['inputs']['img'] * 2))
    to_backends.after_test_iter(runner, 0, two, [sample, sample])
    assert sorted(p.name for p in (tmp_path / 'vis_data' / 'vis_image').iterdir()) == [
        'test sample_1.png', 'test sample_2.png']
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / 'vis_data' / 'vis_image' / 'test sample_2.png')),
                                  expected)
    to_backends.after_val_iter(runner, 1, camera_batch(), [sample])  # not a multiple of the interval
    to_backends.after_val_iter(runner, 4, camera_batch(), [sample])
    assert sorted(p.name for p in (tmp_path / 'vis_data' / 'vis_image').iterdir())[-1] == 'val sample_4.png'

    bev_only = TrackMapVisualizationHook(draw=True, test_out_dir=str(tmp_path / 'bev'), vis_task='lidar_det',
                                         score_thr=0.5, draw_gt=False)
    bev_only.before_test(runner)
    bev_only.after_test_iter(runner, 0, camera_batch(), [sample])
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / 'bev' / 'scene-0001' / '004_tok.png')),
                                  render_frame(record, record_grid(record, PC_RANGE, 4), draw_gt=False))

    silent = TrackMapVisualizationHook(test_out_dir=str(tmp_path / 'off'))
    silent.before_test(runner)
    silent.after_test_iter(runner, 0, camera_batch(), [sample])
    assert not (tmp_path / 'off').exists()
    with pytest.raises(ValueError, match='interval must be >= 1'):
        TrackMapVisualizationHook(interval=0)
    with pytest.raises(ValueError, match="vis_task 'mono_det' is not drawn"):
        TrackMapVisualizationHook(vis_task='mono_det')
    Visualizer.get_instance('plain_hook_test')
    with pytest.raises(TypeError, match="the runner's visualizer is a Visualizer"):
        TrackMapVisualizationHook(draw=True).before_test(runner)


def load_test_tool():
    spec = importlib.util.spec_from_file_location('tool_test_for_show_dir', REPO / 'tools' / 'test.py')
    test_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_tool)
    return test_tool


def test_show_options_switch_the_hook_on(tmp_path):
    cfg = Config(dict(point_cloud_range=[-40.0, -40.0, -5.0, 40.0, 40.0, 3.0],
                      visualizer=dict(type='NexusFlowTrackMapLocalVisualizer', name='visualizer'),
                      default_hooks=dict(visualization=dict(type='NexusFlowTrackMapVisualizationHook', draw=False))))
    entry = enable_visualization(cfg, 'vis', score_thr=0.3, scale=4)
    assert cfg.default_hooks.visualization == dict(type='NexusFlowTrackMapVisualizationHook', draw=True, score_thr=0.3,
                                                   vis_task='multi-view_det', test_out_dir='vis') == entry
    assert cfg.visualizer == dict(type='NexusFlowTrackMapLocalVisualizer', name='visualizer', scale=4,
                                  point_cloud_range=[-40.0, -40.0, -5.0, 40.0, 40.0, 3.0])
    with pytest.raises(ValueError, match="drawing needs visualizer = dict\\(type='NexusFlowTrackMapLocalVisualizer'"):
        enable_visualization(Config(dict(visualizer=dict(type='Visualizer'))), 'vis')

    test_tool = load_test_tool()
    config = tmp_path / 'cfg.py'
    config.write_text("point_cloud_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]\nmodel = dict(type='X')\n"
                      "visualizer = dict(type='NexusFlowTrackMapLocalVisualizer', name='visualizer')\n"
                      "val_evaluator = [dict(type='NexusFlowMapIoUMetric'), "
                      "dict(type='NexusFlowNuScenesTrackingMetric')]\n"
                      "test_evaluator = val_evaluator\n")
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': {}}, ckpt)
    built = test_tool.build_config(test_tool.parse_args([
        str(config), str(ckpt), '--show', '--wait-time', '0.5', '--score-thr', '0.3', '--task', 'lidar_det',
        '--out', 'r.pkl']))
    assert built.default_hooks.visualization == dict(type='NexusFlowTrackMapVisualizationHook', draw=True,
                                                     score_thr=0.3, vis_task='lidar_det', show=True, wait_time=0.5)
    assert built.visualizer.point_cloud_range == [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
    assert [metric['type'] for metric in built.test_evaluator] == [
        'NexusFlowMapIoUMetric', 'NexusFlowNuScenesTrackingMetric', 'DumpResults']
    assert built.test_evaluator[-1].out_file_path == 'r.pkl' and len(built.val_evaluator) == 2
    plain = test_tool.build_config(test_tool.parse_args([str(config), str(ckpt)]))
    assert 'default_hooks' not in plain and len(plain.test_evaluator) == 2  # nothing switched on
    for evaluator, types_after in ((dict(type='NexusFlowMapIoUMetric'), ['NexusFlowMapIoUMetric', 'DumpResults']),
                                   (dict(type='Evaluator', metrics=dict(type='NexusFlowMapIoUMetric')),
                                    ['NexusFlowMapIoUMetric', 'DumpResults'])):
        cfg = Config(dict(test_evaluator=evaluator))
        test_tool.add_dump_results(cfg, 'out.pkl')
        metrics = cfg.test_evaluator['metrics'] if 'metrics' in cfg.test_evaluator else cfg.test_evaluator
        assert [metric['type'] for metric in metrics] == types_after
    with pytest.raises(ValueError, match='--out r.json: the results dump is a pickle'):
        test_tool.build_config(test_tool.parse_args([str(config), str(ckpt), '--out', 'r.json']))
    with pytest.raises(SystemExit):
        test_tool.parse_args([str(config), str(ckpt), '--task', 'mono_det'])


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
