"""Two CPU processes (torchrun + gloo) against one, with the real tiny model on the synthetic set:
one training iteration runs under DDP, and the sequential test loop gives exactly the metrics of one process.

After one iteration no score reaches the 0.4 birth threshold, so the test config births and keeps every query
(tracker thresholds 0): both sides then evaluate the same non-empty track sets, not two empty ones."""
import json
import os
import socket
import subprocess
import sys
from glob import glob
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains through the tools (see tests/conftest.py)

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / 'configs' / 'uniad_nexusflow' / 'tiny_uniad_sgeo.py'

SHRINK = """
_base_ = ['{base}']
data_root = '{root}/'
model = dict(
    img_neck=dict(out_channels=32),
    bev_encoder=dict(bev_h=25, bev_w=25, embed_dims=32, num_layers=1, ffn_dims=64),
    track_head=dict(num_query=30, embed_dims=32, bev_h=25, bev_w=25, decoder=dict(num_layers=2, ffn_dims=64),
                    tracker=dict(score_thresh=0.0, filter_score_thresh=0.0)),
    map_head=dict(bev_h=25, bev_w=25, embed_dims=32, num_query=20,
                  transformer=dict(num_encoder_layers=1, num_decoder_layers=1, ffn_dims=64),
                  thing_mask_head=dict(num_layers=1), stuff_mask_head=dict(num_layers=1)))
pipeline = _base_.train_pipeline
pipeline[4].canvas_size = (25, 25)
train_dataloader = dict(num_workers=0, persistent_workers=False, batch_size=1,
                        dataset=dict(dataset=dict(data_root=data_root, pipeline=pipeline)))
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root, pipeline=pipeline))
val_dataloader = test_dataloader
test_evaluator = [dict(type='NexusFlowNuScenesTrackingMetric', data_root=data_root,
                       ann_file=data_root + 'nuscenes_infos_temporal_val.pkl', version='v1.0-synth'),
                  dict(type='NexusFlowMapIoUMetric')]
val_evaluator = test_evaluator
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1, val_interval=100)
param_scheduler = []
default_hooks = dict(checkpoint=dict(interval=1, by_epoch=False), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_tool(tool, args, nproc, work_dir):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    if nproc == 1:
        cmd = [sys.executable, f'tools/{tool}.py', *args]
    else:
        cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
               f'--master_port={free_port()}', f'tools/{tool}.py', *args, '--launcher', 'pytorch']
    out = subprocess.run(cmd + ['--work-dir', str(work_dir)], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out


def metrics_of(work_dir):
    (path, ) = glob(str(work_dir / '*' / '*.json'))
    return {k: v for k, v in json.loads(Path(path).read_text()).items() if k not in ('time', 'data_time')}


@pytest.fixture(scope='module')
def config(synthetic_root, synthetic_infos, tmp_path_factory):
    path = tmp_path_factory.mktemp('cfg') / 'tiny_dist.py'
    path.write_text(SHRINK.format(base=BASE, root=synthetic_root))
    return str(path)


def test_ddp_training_then_test_metrics_do_not_depend_on_process_count(config, tmp_path):
    out = run_tool('train', [config], 2, tmp_path / 'train')
    log = Path(glob(str(tmp_path / 'train' / '*' / '*.log'))[0]).read_text()
    assert 'Distributed training: True' in log and 'world size 2' in log + out.stdout + out.stderr
    ckpt = tmp_path / 'train' / 'iter_1.pth'
    assert ckpt.is_file()

    tracks = {}
    for name, nproc in (('one', 1), ('two', 2)):
        out_dir = tmp_path / f'{name}_tracks'
        run_tool('test', [config, str(ckpt), '--cfg-options', f'test_evaluator.0.output_dir={out_dir}'], nproc,
                 tmp_path / name)
        tracks[name] = json.loads((out_dir / 'results_nusc_tracking.json').read_text())['results']
    assert tracks['one'] and all(tracks['one'].values())  # every frame has tracks
    assert tracks['one'] == tracks['two']
    one, two = metrics_of(tmp_path / 'one'), metrics_of(tmp_path / 'two')
    assert 'track/amota' in one and 'map/drivable_iou' in one and 'track/boston/amota' in one
    assert one == two
