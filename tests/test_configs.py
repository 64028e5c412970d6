"""Every config of configs/uniad_nexusflow/ loads, builds, and agrees with itself: the BEV grid, the map canvas and
the point-cloud range are the same everywhere, channels match across the parts, plug-in taps fit the model, the test
loop is sequential, two-phase rows freeze what the paper freezes."""
import copy
from glob import glob
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import projects.nexusflow.registration  # noqa: F401  (registers everything)
from mmdet3d.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(glob(str(REPO / 'configs' / 'uniad_nexusflow' / '*.py')))
PHASE2_FROZEN = ['img_backbone', 'img_neck', 'bev_encoder']


def step(pipeline, name):
    (found, ) = [s for s in pipeline if s['type'] == name]
    return found


@pytest.fixture(scope='module', params=CONFIGS, ids=lambda p: Path(p).name)
def cfg(request):
    return Config.fromfile(request.param)


def test_geometry_and_channels_agree(cfg):
    model = cfg.model
    enc, track, mapping = model.bev_encoder, model.track_head, model.map_head
    bev = (enc.bev_h, enc.bev_w)
    assert (track.bev_h, track.bev_w) == bev == (mapping.bev_h, mapping.bev_w)
    pc_range = list(enc.point_cloud_range)
    assert list(track.point_cloud_range) == pc_range
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        assert tuple(step(pipeline, 'NexusFlowLoadMapAnnotations')['canvas_size']) == bev
        assert list(step(pipeline, 'NexusFlowLoadMapAnnotations')['pc_range']) == pc_range
        assert list(step(pipeline, 'NexusFlowTrackObjectRangeFilter')['point_cloud_range']) == pc_range
    assert model.img_neck.out_channels == enc.embed_dims == track.embed_dims == mapping.embed_dims
    assert model.img_neck.num_outs == enc.num_feature_levels
    assert track.num_classes == len(cfg.class_names)
    for plugin in model.get('plugins', []):
        for task in plugin.get('tasks', {}).values():
            tap = task['tap'] if isinstance(task['tap'], dict) else {}
            if tap.get('kind') == 'bev':
                assert tuple(tap['bev_shape']) == bev
            if 'aggregator' in task and 'in_channels' in task['aggregator']:
                assert task['aggregator']['in_channels'] == enc.embed_dims


def test_sequential_test_loop_and_split(cfg):
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.batch_size == 1 and loader.sampler.type == 'NexusFlowSceneAwareSampler'
        assert loader.dataset.get('test_mode') is True
    assert cfg.train_dataloader.dataset.type == 'NexusFlowGeoSplitDataset'
    name = Path(cfg.filename).stem
    expected = 'full' if 'full' in name and 'fullbij' not in name else 'reversed' if 'rgeo' in name else 'standard'
    assert cfg.train_dataloader.dataset.split == expected


def test_two_phase_rows_start_from_phase_one_and_freeze_the_encoder(cfg):
    if 'twophase' not in Path(cfg.filename).stem:
        assert not cfg.model.get('frozen_modules')
        return
    assert cfg.load_from and cfg.model.frozen_modules == PHASE2_FROZEN
    assert dict(type='NexusFlowFreezeModulesHook', modules=PHASE2_FROZEN) in cfg.custom_hooks


BEVFORMER_INIT = 'ckpts/bevformer_r101_dcn_24ep_nexusflow.pth'


def test_frozen_backbones_start_from_weights(cfg):
    """Tiny rows train from scratch; full-size rows start from converted BEVFormer weights, two-phase rows from
    phase 1, the others from an ImageNet init_cfg (tools/train.py refuses frozen random weights at run time)."""
    name, backbone = Path(cfg.filename).stem, cfg.model.img_backbone
    if 'twophase' in name:
        assert cfg.load_from.startswith('work_dirs/')
    elif name.startswith('tiny_'):
        assert cfg.load_from is None and backbone.frozen_stages == -1 and backbone.norm_cfg.requires_grad
        assert not backbone.norm_eval and 'init_cfg' not in backbone
    elif 'init_cfg' in backbone:
        assert backbone.init_cfg.type == 'Pretrained' and cfg.load_from is None
    else:
        assert cfg.load_from == BEVFORMER_INIT and backbone.depth == 101


_built = {}


def test_model_builds_and_plugins_attach(cfg):
    """Build on the meta device (no memory, seconds even at full size); identical model configs build once."""
    key = repr(cfg.model.to_dict())
    if key not in _built:
        with torch.device('meta'):
            model = MODELS.build(copy.deepcopy(cfg.model))
        _built[key] = (sum(p.numel() for p in model.parameters()), len(model.plugins))
    num_params, num_plugins = _built[key]
    assert num_params > 0 and num_plugins == len(cfg.model.get('plugins', []))
