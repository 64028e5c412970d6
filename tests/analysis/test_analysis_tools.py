"""tools/analyze_features.py and tools/visualize.py end to end on the tiny config with random checkpoints.

The split is the first 3 frames of each val scene of the session's synthetic set (one Boston and one Singapore
scene): 6 samples, so each tool run takes a few seconds.
"""
import importlib.util
import json
import os
import pickle
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from tensorboard.backend.event_processing import event_accumulator

from mmdet3d.registry import MODELS
from projects.nexusflow.analysis import subset_mmd

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BASELINE_CFG = str(HERE / 'tiny_analysis_config.py')
NEXUSFLOW_CFG = str(HERE / 'tiny_nexusflow_analysis_config.py')
FRAMES_PER_SCENE = 3


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'analysis_tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_checkpoint(config, path):
    """The state dict of the config's model after ``init_weights`` from seed 0 (a stand-in for training)."""
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


@pytest.fixture(scope='module')
def setup(synthetic_root, synthetic_infos, tmp_path_factory):
    root = tmp_path_factory.mktemp('analysis_tools')
    with open(synthetic_infos['val'], 'rb') as f:
        infos = pickle.load(f)
    infos['data_list'] = [info for info in infos['data_list'] if info['frame_idx'] < FRAMES_PER_SCENE]
    ann_file = root / 'val_short.pkl'
    with open(ann_file, 'wb') as f:
        pickle.dump(infos, f)
    options = ['--work-dir', str(root / 'work_dir'), '--cfg-options',
               f'test_dataloader.dataset.data_root={synthetic_root}/', f'test_dataloader.dataset.ann_file={ann_file}',
               'log_level=WARNING']
    return types.SimpleNamespace(root=root, options=options, baseline=random_checkpoint(BASELINE_CFG, root / 'b.pth'),
                                 nexusflow=random_checkpoint(NEXUSFLOW_CFG, root / 'nf.pth'))


def city_rows(samples):
    cities = np.array([sample['city'] for sample in samples])
    return np.nonzero(cities == 'boston')[0], np.nonzero(cities == 'singapore')[0]


def test_analyze_features_with_and_without_nexusflow(setup):
    tool = load_tool('analyze_features')
    out_b, out_nf = setup.root / 'analysis_baseline', setup.root / 'analysis_nexusflow'
    baseline = tool.main([BASELINE_CFG, setup.baseline, '--out-dir', str(out_b), '--num-subsets', '4']
                         + setup.options)
    flow = tool.main([NEXUSFLOW_CFG, setup.nexusflow, '--out-dir', str(out_nf), '--num-subsets', '4']
                     + setup.options)

    assert list(baseline['features']) == ['taps/bev', 'taps/track', 'taps/map']
    assert list(flow['features']) == ['taps/bev', 'taps/track', 'taps/map', 'embeddings/track', 'embeddings/map',
                                      'latents/track', 'latents/map']
    assert [flow['features'][name]['dim'] for name in flow['features']] == [64, 64, 64, 32, 32, 16, 16]
    assert baseline['cities'] == flow['cities'] == {'boston': 3, 'singapore': 3}
    assert set(baseline['figures']) == {'scree', 'tsne_taps'}
    assert set(flow['figures']) == {'scree', 'tsne_taps', 'tsne_embeddings', 'tsne_latents'}
    assert set(flow['mmd_task']) == {'taps/bev~track', 'taps/bev~map', 'taps/track~map', 'embeddings/track~map',
                                     'latents/track~map'}
    # the collapse diagnostics: norm and per-dimension std of every feature set, embeddings next to latents
    assert all(entry['mean_norm'] > 0 and entry['mean_std'] >= 0 for entry in flow['features'].values())
    for out, summary in ((out_b, baseline), (out_nf, flow)):
        assert json.loads((out / 'analysis.json').read_text()) == json.loads(json.dumps(summary))
        for path in summary['figures'].values():
            assert cv2.imread(path) is not None and Path(path).parent == out

    rows_b, rows_nf = np.load(out_b / 'features.npz'), np.load(out_nf / 'features.npz')
    samples = json.loads(str(rows_nf['__samples__']))
    assert [(s['city'], s['frame_idx']) for s in samples] == [('boston', i) for i in range(3)] + [
        ('singapore', i) for i in range(3)]
    for name in ('taps/bev', 'taps/track', 'taps/map'):  # the plug-in never changes what the host computes
        np.testing.assert_array_equal(rows_b[name], rows_nf[name])
    boston, singapore = city_rows(samples)
    for name in ('taps/track', 'latents/map'):
        stat = flow['features'][name]['mmd_city']['boston~singapore']
        assert stat == subset_mmd(rows_nf[name][boston], rows_nf[name][singapore], num_subsets=4, seed=0)
        assert stat['subset_size'] == 2 and len(stat['values']) == 4
    assert flow['features']['taps/bev']['mmd_ref']['subset_size'] == 3


def test_tap_option_parsing():
    tool = load_tool('analyze_features')
    model = types.SimpleNamespace(bev_encoder=types.SimpleNamespace(bev_h=25, bev_w=30))
    assert tool.parse_taps(['q=track_head.decoder:queries', 'm=map_head.transformer.encoder:bev'], model) == dict(
        q=dict(module='track_head.decoder', kind='queries'),
        m=dict(module='map_head.transformer.encoder', kind='bev', bev_shape=(25, 30)))
    with pytest.raises(ValueError, match='--tap must be NAME=MODULE:KIND'):
        tool.parse_taps(['track_head.decoder'], model)


def test_visualize_model_then_results_dump(setup):
    tool = load_tool('visualize')
    out_model, out_dump = setup.root / 'vis_model', setup.root / 'vis_dump'
    options = setup.options + ['model.track_head.tracker.score_thresh=0.0',
                               'model.track_head.tracker.filter_score_thresh=0.0']  # random weights: keep tracks
    assert tool.main(['model', BASELINE_CFG, setup.baseline, '--out-dir', str(out_model)] + options) == 6
    assert tool.main(['results', str(out_model / 'results.pkl'), '--out-dir', str(out_dump), '--video']) == 6
    scenes = sorted(p.name for p in out_dump.iterdir() if p.is_dir())
    assert len(scenes) == 2 and sorted(p.name for p in out_dump.iterdir() if p.is_file()) == [
        f'{scene}.mp4' for scene in scenes]  # one video per scene
    pngs = sorted(p.relative_to(out_model) for p in out_model.rglob('*.png'))
    assert len(pngs) == 6 and pngs == sorted(p.relative_to(out_dump) for p in out_dump.rglob('*.png'))
    assert [p.name[:4] for p in pngs] == ['000_', '001_', '002_'] * 2
    for rel in pngs:  # the hook (batch images) and the dump (files re-read) draw the same pixels
        drawn, redrawn = cv2.imread(str(out_model / rel)), cv2.imread(str(out_dump / rel))
        assert drawn.shape[1] == 2 * 25 * 8 + 4
        np.testing.assert_array_equal(drawn, redrawn)
    with open(out_model / 'results.pkl', 'rb') as f:
        results = pickle.load(f)
    assert all(len(r['pred_instances_3d']['instance_ids']) > 0 for r in results)
    no_cams = setup.root / 'vis_nocam'
    tool.main(['results', str(out_model / 'results.pkl'), '--out-dir', str(no_cams), '--no-cameras'])
    assert cv2.imread(str(no_cams / pngs[0])).shape == (200 + 22, 404, 3)
    assert not os.path.exists(setup.root / 'missing.pkl')
    with pytest.raises(FileNotFoundError, match='results file'):
        tool.main(['results', str(setup.root / 'missing.pkl'), '--out-dir', str(no_cams)])


@pytest.mark.slow
def test_test_tool_draws_dumps_and_logs_images_to_tensorboard(setup, tmp_path):
    """tools/test.py --show-dir --score-thr --out with an evaluator list; the drawings reach TensorBoard."""
    config = tmp_path / 'map_only.py'  # the tracking / detection metrics need the devkit tables: the map metric only
    config.write_text(f"_base_ = [{BASELINE_CFG!r}]\ntest_evaluator = [dict(type='NexusFlowMapIoUMetric')]\n")
    tool = load_tool('test')
    keep_tracks = ['model.track_head.tracker.score_thresh=0.0', 'model.track_head.tracker.filter_score_thresh=0.0']
    common = [str(config), setup.baseline] + setup.options[2:] + keep_tracks
    metrics = tool.main(common[:2] + ['--work-dir', str(tmp_path / 'files'), '--show-dir', 'vis', '--score-thr',
                                      '0.3', '--out', str(tmp_path / 'r.pkl')] + common[2:])
    assert any(key.endswith('lanes_iou') for key in metrics)  # the configured metric ran next to the dump
    drawn = sorted((tmp_path / 'files').glob('*/vis/*/*.png'))
    scenes = sorted({p.parent.name for p in drawn})
    assert len(drawn) == 6 and len(scenes) == 2
    with open(tmp_path / 'r.pkl', 'rb') as f:
        assert len(pickle.load(f)) == 6
    redrawn = tmp_path / 'redrawn'
    vis = load_tool('visualize')
    assert vis.main(['results', str(tmp_path / 'r.pkl'), '--out-dir', str(redrawn), '--score-thr', '0.3',
                     '--video']) == 6
    for path in drawn:  # the test run (batch images) and the dump (files re-read) draw the same pixels
        np.testing.assert_array_equal(cv2.imread(str(path)),
                                      cv2.imread(str(redrawn / path.parent.name / path.name)))
    assert sorted(p.name for p in redrawn.iterdir() if p.is_file()) == [f'{scene}.mp4' for scene in scenes]

    # no --show-dir: the drawings go to the vis_backends. A fresh visualiser name: mmengine returns an existing
    # instance of the same name (with its save_dir) to a second runner in the same process.
    tool.main(common[:2] + ['--work-dir', str(tmp_path / 'backends')] + common[2:]
              + ['default_hooks.visualization.draw=True', 'visualizer.name=backends_run'])
    (vis_data, ) = (tmp_path / 'backends').glob('*/vis_data')
    assert len(list((vis_data / 'vis_image').glob('test sample_*.png'))) == 6
    events = event_accumulator.EventAccumulator(str(vis_data), size_guidance={event_accumulator.IMAGES: 0})
    events.Reload()
    assert [image.step for image in events.Images('test sample')] == [1, 2, 3, 4, 5, 6]
