"""MTPSL and JTR on the real UniAD detector and data pipeline: configs swap only the plug-in, the baseline stays
bit-identical, plug-in gradients reach the heads through their tap points, and the tiny configs train under the
geo-split through mmengine's Runner."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet3d.registry import MODELS
from projects.nexusflow.datasets import NuScenesTrackMapDataset, clip_collate
from projects.nexusflow.models import psmtl  # noqa: F401  (registers MTPSL, JTR and the rasters)

CONFIGS = dict(MTPSL='configs/uniad_nexusflow/tiny_mtpsl_sgeo.py', JTR='configs/uniad_nexusflow/tiny_jtr_sgeo.py')
LOSS_KEY = dict(MTPSL='mtpsl.loss_consistency', JTR='jtr.loss_dist')
SIDE = 25  # BEV and canvas of the shrunk tiny model


def shrink(cfg):
    """The tiny config shrunk further (as tests/models/test_detector.py) so that each step takes about a second."""
    model = cfg.model
    model.img_neck.out_channels = 32
    model.bev_encoder.update(bev_h=SIDE, bev_w=SIDE, embed_dims=32, num_layers=1, ffn_dims=64)
    model.track_head.update(num_query=30, embed_dims=32, bev_h=SIDE, bev_w=SIDE,
                            decoder=dict(num_layers=2, num_heads=4, ffn_dims=64))
    model.map_head.update(bev_h=SIDE, bev_w=SIDE, embed_dims=32, num_query=20,
                          transformer=dict(num_encoder_layers=1, num_decoder_layers=1, num_heads=4, ffn_dims=64),
                          thing_mask_head=dict(num_layers=1), stuff_mask_head=dict(num_layers=1))
    for plugin in model.get('plugins', []):
        if plugin['type'] == 'NexusFlowMTPSL':
            plugin.update(feat_channels=32, mapper=dict(channels=(8, 16)))
            plugin['feature_tap']['bev_shape'] = (SIDE, SIDE)
        else:
            plugin.update(autoencoder=dict(channels=(8, 16)))
    for step in cfg.train_pipeline:
        if step['type'] == 'NexusFlowLoadMapAnnotations':
            step['canvas_size'] = (SIDE, SIDE)
    cfg.train_dataloader.dataset.dataset.pipeline = cfg.train_pipeline
    return cfg


def build_model(model_cfg, plugins=None):
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg.plugins = plugins or []
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def cfgs():
    return {kind: shrink(Config.fromfile(path)) for kind, path in CONFIGS.items()}


@pytest.fixture(scope='module')
def datasets(cfgs, synthetic_root, synthetic_infos):
    kwargs = dict(data_root=str(synthetic_root), version='v1.0-synth', pipeline=cfgs['MTPSL'].train_pipeline)
    train = NuScenesTrackMapDataset(ann_file=synthetic_infos['train'], queue_length=2, **kwargs)
    test = NuScenesTrackMapDataset(ann_file=synthetic_infos['val'], test_mode=True, **kwargs)
    return train, test


def test_configs_swap_only_the_plugin():
    base_full = Config.fromfile('configs/uniad_nexusflow/_base_/models/uniad_stage1.py')
    base_full.merge_from_dict(Config.fromfile('configs/uniad_nexusflow/_base_/datasets/nus_track_map.py').to_dict())
    base_tiny = Config.fromfile('configs/uniad_nexusflow/tiny_uniad_full.py')
    for name, base, kind, split in [('mtpsl_sgeo', base_full, 'MTPSL', 'standard'),
                                    ('mtpsl_rgeo', base_full, 'MTPSL', 'reversed'),
                                    ('jtr_sgeo', base_full, 'JTR', 'standard'),
                                    ('jtr_rgeo', base_full, 'JTR', 'reversed'),
                                    ('tiny_mtpsl_sgeo', base_tiny, 'MTPSL', 'standard'),
                                    ('tiny_mtpsl_rgeo', base_tiny, 'MTPSL', 'reversed'),
                                    ('tiny_jtr_sgeo', base_tiny, 'JTR', 'standard'),
                                    ('tiny_jtr_rgeo', base_tiny, 'JTR', 'reversed')]:
        cfg = Config.fromfile(f'configs/uniad_nexusflow/{name}.py')
        model = cfg.model.to_dict()
        assert [p['type'] for p in model.pop('plugins')] == ['NexusFlow' + kind], name
        assert model == base.model.to_dict(), f'{name} must change nothing but the plug-in'
        assert cfg.train_dataloader.dataset.split == split
        assert cfg.train_dataloader.dataset.dataset == base.train_dataloader.dataset.dataset
        custom_keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
        assert ('film_' in custom_keys) == (kind == 'MTPSL')


@pytest.mark.parametrize('kind', ['MTPSL', 'JTR'])
def test_baseline_stays_bit_identical_with_the_plugin(cfgs, datasets, kind):
    cfg = cfgs[kind]
    base, plugged = build_model(cfg.model), build_model(cfg.model, cfg.model.plugins)
    missing, unexpected = plugged.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith('plugins.') for k in missing)
    train, test = datasets
    base.eval(), plugged.eval()
    for idx in range(3):
        with torch.no_grad():
            a, b = (m.predict(**m.data_preprocessor(clip_collate([test[idx]]))) for m in (base, plugged))
        assert torch.equal(a[0].pred_instances_3d.bboxes_3d.tensor, b[0].pred_instances_3d.bboxes_3d.tensor)
        assert torch.equal(a[0].pred_instances_3d.scores_3d, b[0].pred_instances_3d.scores_3d)
        assert torch.equal(a[0].pred_map['masks'], b[0].pred_map['masks'])
    base.train(), plugged.train()
    mask_passes = {id(base): [], id(plugged): []}
    for model in (base, plugged):
        model.map_head.thing_mask_head.register_forward_hook(lambda *_, key=id(model): mask_passes[key].append(1))
    data = base.data_preprocessor(clip_collate([train[0]]), training=True)
    torch.manual_seed(1)
    base_losses = base.loss(**data)
    torch.manual_seed(1)
    plugged_losses = plugged.loss(**data)
    assert (len(mask_passes[id(base)]), len(mask_passes[id(plugged)])) == (1, 2), 'semantic pass only on request'
    added = set(plugged_losses) - set(base_losses)
    assert added and all(key.startswith(kind.lower() + '.') for key in added)
    assert all(torch.equal(value, plugged_losses[key]) for key, value in base_losses.items())


@pytest.mark.parametrize('kind', ['MTPSL', 'JTR'])
def test_plugin_gradients_reach_the_unlabelled_head_through_its_tap_point(cfgs, datasets, kind):
    cfg = cfgs[kind]
    model = build_model(cfg.model, cfg.model.plugins).train()
    clip = datasets[0].prepare_data(0, has_track_gt=True, has_map_gt=False)
    data = model.data_preprocessor(clip_collate([clip]), training=True)
    losses = model.loss(**data)
    plugin_loss = sum(v for k, v in losses.items() if k.startswith(kind.lower() + '.loss'))
    assert torch.isfinite(plugin_loss) and plugin_loss > 0
    model.zero_grad()
    plugin_loss.backward()

    def grads(module):
        return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)

    assert grads(model.map_head.thing_mask_head) > 0 and grads(model.map_head.stuff_mask_head) > 0
    assert grads(model.track_head) == 0, 'the labelled task is represented by its labels'
    assert grads(model.bev_encoder) > 0
    assert grads(model.plugins[0]) > 0


class LossRecorder(Hook):
    """Keeps the logged losses of every training iteration."""

    def __init__(self):
        self.history = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.history.append({key: float(value) for key, value in outputs.items()})


def runner_cfg(cfg, work_dir, synthetic_root, synthetic_infos, iters):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    loader = cfg.train_dataloader
    loader.update(num_workers=0, persistent_workers=False)
    loader.dataset.dataset.update(data_root=str(synthetic_root), ann_file=synthetic_infos['train'], queue_length=2)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.param_scheduler = []
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader', 'test_evaluator', 'test_cfg'):
        cfg[key] = None
    cfg.default_hooks.update(checkpoint=None, logger=dict(type='LoggerHook', interval=1))
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.log_level = 'WARNING'
    return cfg


@pytest.mark.parametrize('kind', ['MTPSL', 'JTR'])
def test_tiny_config_trains_under_the_geo_split(cfgs, synthetic_root, synthetic_infos, tmp_path, kind):
    runner = Runner.from_cfg(runner_cfg(cfgs[kind], tmp_path, synthetic_root, synthetic_infos, iters=3))
    recorder = LossRecorder()
    runner.register_hook(recorder, 'LOWEST')
    runner.train()
    history = recorder.history
    assert len(history) == 3
    for logged in history:
        assert all(torch.isfinite(torch.tensor(v)) for k, v in logged.items() if 'loss' in k)
        assert LOSS_KEY[kind] in logged and logged[LOSS_KEY[kind]] > 0
        if kind == 'MTPSL':
            assert logged['mtpsl.num_pairs'] == 1.0, 'under S-Geo every clip has exactly one labelled task'
    values = [logged[LOSS_KEY[kind]] for logged in history]
    assert len(set(values)) == len(values), values
