"""FreezeModulesHook with a real mmengine Runner: frozen weights and BN statistics bit-identical, DDP safety."""
import os
import types
import uuid

import pytest
import torch
import torch.distributed as dist
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from projects.nexusflow.core import freeze_modules
from projects.nexusflow.engine import FreezeModulesHook

FROZEN = ['img_backbone', 'bev_encoder']
NUM_FROZEN = (3 * 4 * 9 + 4) + (4 + 4) + (4 * 4 + 4) + (4 + 4)  # conv, BN, linear, LN


class TinyDetector(BaseModel):
    """Conv+BN "backbone", Linear+LN "BEV encoder", a head with BN; calls ``self.train()`` inside its forward like
    a model that runs an eval-mode history pass first."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.img_backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.bev_encoder = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.head = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if self.training:
            self.eval()
            with torch.no_grad():
                self.img_backbone(inputs)  # "history" pass
            self.train()
        out = self.head(self.bev_encoder(self.img_backbone(inputs).mean((2, 3))))
        return dict(loss=(out - 1.0).pow(2).mean()) if mode == 'loss' else out


def loader():
    gen = torch.Generator().manual_seed(0)
    items = [dict(inputs=torch.randn(3, 8, 8, generator=gen) * 3 + 1) for _ in range(16)]
    return DataLoader(items, batch_size=4, shuffle=False)


def make_runner(model, work_dir, hook_modules=FROZEN, **kwargs):
    return Runner(model=model, work_dir=str(work_dir), experiment_name=f'freeze-{uuid.uuid4().hex}',
                  train_dataloader=loader(), train_cfg=dict(by_epoch=False, max_iters=4, val_interval=100),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.01)),
                  custom_hooks=[dict(type='NexusFlowFreezeModulesHook', modules=hook_modules)],
                  default_hooks=dict(checkpoint=None), default_scope='mmdet3d', **kwargs)


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def check_frozen_and_trained(before, after):
    for key in before:
        if key.split('.')[0] in FROZEN:
            assert torch.equal(before[key], after[key]), f'{key} changed although frozen'
    for key in ('head.0.weight', 'head.2.weight', 'head.1.running_mean', 'head.1.running_var'):
        assert not torch.equal(before[key], after[key]), f'{key} must still train'


def test_runner_freezes_weights_and_bn_statistics(tmp_path):
    model = TinyDetector()
    before = snapshot(model)
    runner = make_runner(model, tmp_path)
    runner.train()
    check_frozen_and_trained(before, snapshot(model))
    assert before['img_backbone.1.num_batches_tracked'] == model.img_backbone[1].num_batches_tracked
    assert all(not p.requires_grad and p.grad is None for p in model.img_backbone.parameters())
    assert not model.img_backbone[1].training and model.head[1].training
    log_file = next(tmp_path.rglob('*.log'))
    assert f'FreezeModulesHook: {NUM_FROZEN} parameters frozen' in log_file.read_text()


def test_typo_and_empty_modules():
    runner = types.SimpleNamespace(model=TinyDetector(), logger=MMLogger.get_instance('freeze-test'))
    with pytest.raises(KeyError, match=r"'bev_encodr'.*\['bev_encoder'"):
        FreezeModulesHook(modules=['img_backbone', 'bev_encodr']).before_train(runner)
    with pytest.raises(KeyError, match="'img'"):
        freeze_modules(runner.model, ['img'])  # a prefix is a whole dotted name, not a string prefix
    with pytest.raises(TypeError, match='non-empty list'):
        FreezeModulesHook(modules='img_backbone')
    assert freeze_modules(runner.model, ['img_backbone.0', 'head']) == {'img_backbone.0': 112, 'head': 20 + 8 + 5}


@pytest.fixture
def gloo_group(tmp_path, monkeypatch):
    """A one-process gloo group, enough to build DDP and hit its reducer checks on the CPU."""
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1').items():
        monkeypatch.setenv(key, value)
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def ddp_runner(model, work_dir, find_unused):
    wrapper = dict(type='MMDistributedDataParallel', device_ids=None, find_unused_parameters=find_unused)
    return make_runner(model, work_dir, launcher='pytorch', cfg=dict(model_wrapper_cfg=wrapper))


def test_ddp_freeze_after_wrapping_raises_a_clear_error(gloo_group, tmp_path, monkeypatch):
    runner = ddp_runner(TinyDetector(), tmp_path, find_unused=False)
    assert isinstance(runner.model, DistributedDataParallel)
    with pytest.raises(RuntimeError, match='registered when the Runner wrapped the model'):
        runner.train()
    # the condition is real: without the check, DDP fails on the second iteration
    monkeypatch.setattr(FreezeModulesHook, '_check_ddp', lambda self, wrapper, names: None)
    with pytest.raises(RuntimeError, match='Expected to have finished reduction'):
        ddp_runner(TinyDetector(), tmp_path / 'unchecked', find_unused=False).train()


def test_ddp_freeze_at_build_time_is_safe(gloo_group, tmp_path):
    model = TinyDetector()
    freeze_modules(model, FROZEN)  # what a model's frozen_modules option does at the end of __init__
    before = snapshot(model)
    runner = ddp_runner(model, tmp_path, find_unused=False)
    runner.train()
    check_frozen_and_trained(before, snapshot(model))


def test_ddp_with_find_unused_parameters_is_safe(gloo_group, tmp_path):
    model = TinyDetector()
    before = snapshot(model)
    ddp_runner(model, tmp_path, find_unused=True).train()
    check_frozen_and_trained(before, snapshot(model))
    assert os.environ['WORLD_SIZE'] == '1'
