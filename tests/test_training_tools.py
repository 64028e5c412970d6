"""The shipped tiny configs through tools/train.py for a few iterations on the fixture set: the quickstart's default
config (one-phase NexusFlow) trains, and two-phase training (phase 1 = the baseline, phase 2 = NexusFlow from its
checkpoint with the image backbone, neck and BEV encoder frozen) leaves every frozen tensor bit-identical while the
heads and the plug-in train."""
import json
import os
import subprocess
import sys
from glob import glob
from pathlib import Path

import mmdet3d
import pytest
import torch

pytestmark = pytest.mark.slow  # trains the real tiny model through the tools (see tests/conftest.py)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs' / 'uniad_nexusflow'
FROZEN = ('img_backbone.', 'img_neck.', 'bev_encoder.')
SHORT = """
_base_ = ['{base}']
data_root = '{root}/'
train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(dataset=dict(data_root=data_root)))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={iters})
val_dataloader = val_cfg = val_evaluator = None
param_scheduler = [dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=50)]
default_hooks = dict(checkpoint=dict(interval=1, by_epoch=False), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
"""


def train(config, root, work_dir, iters, *options):
    cfg = work_dir.parent / f'{work_dir.name}.py'
    cfg.write_text(SHORT.format(base=CONFIGS / config, root=root, iters=iters))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, 'tools/train.py', str(cfg), '--work-dir', str(work_dir)]
    out = subprocess.run(cmd + (['--cfg-options', *options] if options else []), cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    (scalars, ) = glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    return [json.loads(line) for line in Path(scalars).read_text().splitlines()]


def state_dict(path):
    return torch.load(path, map_location='cpu')['state_dict']  # torch's default weights_only=True


def test_quickstart_default_config_trains_and_mmdet3d_tests_it(synthetic_root, synthetic_infos, tmp_path):
    """Two iterations of the quickstart config, then mmdet3d's own tools/test.py (shipped in the mmdet3d package)
    tests the checkpoint with torch's default weights_only=True loading (no TORCH_FORCE_* variable)."""
    records = train('tiny_nexusflow_onephase_sgeo.py', synthetic_root, tmp_path / 'onephase', 2)
    losses = [r for r in records if 'loss' in r]
    assert [r['iter'] for r in losses] == [1, 2]
    for record in losses:
        assert all(torch.isfinite(torch.tensor(record[key])) for key in record if 'loss' in key)
        assert 'nexusflow.loss_align' in record and any(key.startswith('track.frame_') for key in record)
    ckpt = tmp_path / 'onephase' / 'iter_2.pth'
    assert ckpt.is_file()

    mmdet3d_test = Path(mmdet3d.__file__).parent / '.mim' / 'tools' / 'test.py'
    env = {key: value for key, value in os.environ.items() if not key.startswith('TORCH_FORCE')}
    env.update(PYTHONPATH=str(REPO), DATA_ROOT=f'{synthetic_root}/')
    out = subprocess.run([sys.executable, str(mmdet3d_test), str(CONFIGS / 'tiny_nexusflow_onephase_sgeo.py'),
                          str(ckpt), '--work-dir', str(tmp_path / 'mmdet3d_test')], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert 'Load checkpoint from' in out.stdout + out.stderr
    assert 'amota' in (out.stdout + out.stderr).lower() and 'lanes' in (out.stdout + out.stderr).lower()


def test_two_phase_freezes_the_shared_trunk_and_trains_heads_and_plugin(synthetic_root, synthetic_infos, tmp_path):
    train('tiny_uniad_sgeo.py', synthetic_root, tmp_path / 'phase1', 1)
    phase1 = tmp_path / 'phase1' / 'iter_1.pth'
    train('tiny_nexusflow_twophase_sgeo.py', synthetic_root, tmp_path / 'phase2', 2, f'load_from={phase1}')
    start, first, last = (state_dict(p) for p in (phase1, tmp_path / 'phase2' / 'iter_1.pth',
                                                  tmp_path / 'phase2' / 'iter_2.pth'))
    frozen = [k for k in start if k.startswith(FROZEN)]
    assert len(frozen) > 100
    moved = [k for k in frozen if not torch.equal(start[k], last[k])]
    assert not moved, f'phase 2 changed frozen tensors (weights or BN statistics): {moved[:5]}'
    heads = [k for k in start if k.startswith(('track_head.', 'map_head.')) and start[k].is_floating_point()]
    assert sum(not torch.equal(start[k], last[k]) for k in heads) > len(heads) // 2
    plugin = [k for k in last if k.startswith('plugins.') and last[k].is_floating_point()]
    assert plugin and not any(k in start for k in plugin)
    assert sum(not torch.equal(first[k], last[k]) for k in plugin) > len(plugin) // 2
