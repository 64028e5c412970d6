"""check_training_init (called by tools/train.py): frozen parameters must come from a checkpoint or an init_cfg."""
import copy
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import projects.nexusflow  # noqa: F401
from mmdet3d.registry import MODELS
from projects.nexusflow.engine import UninitialisedFrozenError, check_training_init
from projects.nexusflow.models.converters import convert_official

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / 'configs' / 'uniad_nexusflow'


def config(name, work_dir, **options):
    cfg = Config.fromfile(str(CONFIGS / name))
    cfg.merge_from_dict(options)
    cfg.work_dir = str(work_dir)
    return cfg


def build(cfg):
    with torch.device('meta'):
        return MODELS.build(copy.deepcopy(cfg.model))


def save(state, path):
    torch.save(dict(state_dict={k: torch.empty(v.shape, device='meta') for k, v in state.items()}), path)
    return str(path)


def test_tiny_config_trains_from_scratch_with_nothing_frozen(tmp_path):
    cfg = config('tiny_uniad_full.py', tmp_path)
    assert cfg.load_from is None
    check_training_init(build(cfg), cfg)


def test_frozen_random_backbone_is_refused(tmp_path):
    cfg = config('tiny_uniad_full.py', tmp_path, **{'model.img_backbone.frozen_stages': 4})
    with pytest.raises(UninitialisedFrozenError, match=r'img_backbone\.layer1') as error:
        check_training_init(build(cfg), cfg)
    assert 'img_backbone.layer4' in str(error.value) and 'bev_encoder' not in str(error.value)


def test_frozen_backbone_from_checkpoint_or_init_cfg_passes(tmp_path):
    options = {'model.img_backbone.frozen_stages': 4}
    cfg = config('tiny_uniad_full.py', tmp_path, **options)
    model = build(cfg)
    state = model.state_dict()
    cfg.load_from = save(state, tmp_path / 'all.pth')
    check_training_init(model, cfg)
    cfg.load_from = save({k: v for k, v in state.items() if not k.startswith('img_backbone.layer4')},
                         tmp_path / 'partial.pth')
    with pytest.raises(UninitialisedFrozenError, match=r'img_backbone\.layer4') as error:
        check_training_init(model, cfg)
    assert 'layer1' not in str(error.value)
    cfg = config('tiny_uniad_full.py', tmp_path, **options, **{
        'model.img_backbone.init_cfg': dict(type='Pretrained', checkpoint='torchvision://resnet18')})
    check_training_init(build(cfg), cfg)


def test_two_phase_freezes_what_load_from_sets(tmp_path):
    cfg = config('tiny_nexusflow_twophase_sgeo.py', tmp_path)
    model = build(cfg)
    with pytest.raises(FileNotFoundError, match='train the config it comes from first'):
        check_training_init(model, cfg)
    cfg.load_from = save({k: v for k, v in model.state_dict().items() if not k.startswith('plugins.')},
                         tmp_path / 'phase1.pth')
    check_training_init(model, cfg)  # plug-ins start at init, but they train
    cfg.load_from = None
    with pytest.raises(UninitialisedFrozenError, match='bev_encoder'):
        check_training_init(model, cfg)


def test_resume_auto_needs_a_checkpoint_in_the_work_dir(tmp_path):
    cfg = config('tiny_uniad_full.py', tmp_path, **{'model.img_backbone.frozen_stages': 4})
    cfg.resume, cfg.load_from = True, None
    model = build(cfg)
    with pytest.raises(UninitialisedFrozenError):
        check_training_init(model, cfg)
    save(model.state_dict(), tmp_path / 'epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    check_training_init(model, cfg)


def test_full_size_config_needs_the_converted_bevformer_checkpoint(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr('projects.nexusflow.engine.init_check.print_log', lambda msg, **kwargs: logged.append(msg))
    cfg = config('uniad_full.py', tmp_path)
    model = build(cfg)
    with pytest.raises(FileNotFoundError, match='bevformer_to_nexusflow.py ckpts/bevformer_r101_dcn_24ep.pth'):
        check_training_init(model, cfg)
    manifest = json.loads((REPO / 'tests/data/official_checkpoints/bevformer_r101_dcn_24ep.json').read_text())
    converted, report = convert_official({k: torch.empty(s, device='meta') for k, s in manifest.items()},
                                         'bevformer', {k: tuple(v.shape) for k, v in model.state_dict().items()})
    assert report.ok
    cfg.load_from = save(converted, tmp_path / 'bevformer_r101_dcn_24ep_nexusflow.pth')
    check_training_init(model, cfg)
    assert 'missing in: ' in logged[-1] and 'map_head' in logged[-1]  # the tools/test.py report
    cfg.load_from = None
    with pytest.raises(UninitialisedFrozenError, match='img_backbone'):
        check_training_init(model, cfg)
    imagenet = config('uniad_full_imagenet.py', tmp_path)
    check_training_init(build(imagenet), imagenet)
