"""tools/: argument parsing and config overrides, the checkpoint check (2-process runs: tests/test_distributed.py)."""
import importlib.util
import os.path as osp
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import nn

from projects.nexusflow.evaluation import CheckpointMismatchError, check_checkpoint

REPO = Path(__file__).resolve().parents[2]


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / 'tiny_cfg.py'
    path.write_text("default_scope = 'mmdet3d'\n"
                    "model = dict(type='ToyTemporalModel')\n"
                    "train_dataloader = dict(batch_size=2, dataset=dict(type='ToySceneDataset'))\n"
                    "optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-4))\n"
                    "auto_scale_lr = dict(enable=False, base_batch_size=8)\n"
                    "default_hooks = dict(visualization=dict(type='Det3DVisualizationHook'))\n"
                    "visualizer = dict(type='NexusFlowTrackMapLocalVisualizer', name='visualizer')\n")
    return str(path)


@pytest.mark.parametrize('tool, option', [('train', '--auto-scale-lr'), ('test', '--max-missing-ratio'),
                                          ('eval_track', '--eval-set')])
def test_help_lists_the_options(tool, option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool(tool).parse_args(['--help'])
    assert exit_info.value.code == 0 and option in capsys.readouterr().out


def test_train_config_overrides(config_file, tmp_path):
    train = load_tool('train')
    args = train.parse_args([config_file, '--cfg-options', 'train_dataloader.batch_size=4',
                             'optim_wrapper.optimizer.lr=0.001', '--work-dir', str(tmp_path / 'wd'), '--amp',
                             '--auto-scale-lr', '--resume'])
    cfg = train.build_config(args)
    assert cfg.train_dataloader.batch_size == 4 and cfg.optim_wrapper.optimizer.lr == 0.001
    assert cfg.work_dir == str(tmp_path / 'wd') and cfg.launcher == 'none'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.auto_scale_lr.enable is True
    assert cfg.resume is True and cfg.load_from is None  # --resume without a path: latest in the work dir
    assert train.scale_summary(2, cfg) == ('world size 2 x batch 4 per process = total batch 8; base lr 0.001, '
                                           'effective lr 0.001 (auto_scale_lr on: x 8/8)')
    cfg = train.build_config(train.parse_args([config_file, '--resume', 'ckpt.pth', '--launcher', 'pytorch']))
    assert cfg.resume is True and cfg.load_from == 'ckpt.pth' and cfg.launcher == 'pytorch'
    assert cfg.work_dir == osp.join('./work_dirs', 'tiny_cfg')
    assert train.scale_summary(3, cfg) == ('world size 3 x batch 2 per process = total batch 6; base lr 0.0002, '
                                           'effective lr 0.0002 (auto_scale_lr off)')


def test_train_clear_errors(config_file, tmp_path):
    train = load_tool('train')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        train.build_config(train.parse_args([str(tmp_path / 'missing.py')]))
    no_scale = tmp_path / 'no_scale.py'
    no_scale.write_text(Path(config_file).read_text().replace('auto_scale_lr', 'unused'))
    with pytest.raises(KeyError, match='base_batch_size'):
        train.build_config(train.parse_args([str(no_scale), '--auto-scale-lr']))


def test_test_config_overrides_and_errors(config_file, tmp_path):
    test = load_tool('test')
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': {}}, ckpt)
    cfg = test.build_config(test.parse_args([config_file, str(ckpt), '--show-dir', 'vis', '--cfg-options',
                                             'model.type=Other']))
    assert cfg.load_from == str(ckpt) and cfg.model.type == 'Other'
    # --show-dir switches on the config's default_hooks.visualization (as mmdet3d's tools/test.py), writing into 'vis'
    assert cfg.default_hooks.visualization == dict(type='Det3DVisualizationHook', draw=True, test_out_dir='vis',
                                                   score_thr=0.1, vis_task='multi-view_det')
    with pytest.raises(FileNotFoundError, match='checkpoint .*missing.pth does not exist'):
        test.build_config(test.parse_args([config_file, str(tmp_path / 'missing.pth')]))


def test_cpu_distributed_setup_refuses_nccl_and_other_launchers():
    from tools.launch_utils import setup_cpu_distributed
    assert setup_cpu_distributed(Config(dict(launcher='none'))) is False
    if torch.cuda.is_available():
        pytest.skip('the CPU path is only taken without CUDA')
    with pytest.raises(ValueError, match="gloo backend, but env_cfg.dist_cfg.backend is 'nccl'"):
        setup_cpu_distributed(Config(dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl')))))
    with pytest.raises(ValueError, match='--launcher slurm needs CUDA'):
        setup_cpu_distributed(Config(dict(launcher='slurm')))


class Net(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, hidden), nn.BatchNorm1d(hidden))
        self.head = nn.Linear(hidden, 2)


def test_checkpoint_check(tmp_path):
    model = Net()
    state = model.state_dict()
    path = str(tmp_path / 'ckpt.pth')

    torch.save({'state_dict': {f'module.{k}': v for k, v in state.items()}, 'meta': {}}, path)  # DDP-saved
    report = check_checkpoint(model, path)
    assert report['missing'] == [] and report['unexpected'] == [] and report['shape_mismatch'] == []

    partial = {k: v for k, v in state.items() if k != 'head.bias'}
    partial['motion_head.weight'] = torch.zeros(3)
    torch.save(partial, path)  # a raw state dict: 2 of 243 values unset (< 10 %), one unexpected key
    report = check_checkpoint(model, path)
    assert report['missing'] == ['head.bias'] and report['unexpected'] == ['motion_head.weight']
    assert (report['missing_numel'], report['total_numel']) == (2, sum(v.numel() for v in state.values()))

    torch.save({'state_dict': {k: v for k, v in state.items() if not k.startswith('backbone')}}, path)
    with pytest.raises(CheckpointMismatchError, match=r'(?s)checkpoint does not match config.*missing in: '
                       r'backbone\.1 \(5\), backbone\.0 \(2\)'):
        check_checkpoint(model, path)
    check_checkpoint(model, path, max_missing_ratio=1.0)  # a deliberate partial load

    torch.save({'state_dict': Net(hidden=12).state_dict()}, path)
    with pytest.raises(CheckpointMismatchError, match=r'shape mismatch backbone\.0\.bias: model \(16,\) vs '
                       r'checkpoint \(12,\)'):
        check_checkpoint(model, path, max_missing_ratio=1.0)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        check_checkpoint(model, str(tmp_path / 'nope.pth'))
