"""The main job end to end, through the user-facing tools: synthetic nuScenes -> tools/train.py (the tiny config as
shipped with heatmap-initialised track queries, a short schedule: 36 epochs of the 8 three-frame clips of the fixture's
2 training scenes, 288 iterations) -> tools/test.py with every metric. Trained and evaluated on the same clips, the
model must overfit them: the loss falls by a large factor, the tracker finds the objects and follows them (AMOTA > 0,
recall > 0.2, id switches a minority of the true positives), drivable area and lanes are segmented.

Calibration of this schedule (runtime seeds 0 and 1, 1 thread each, two runs side by side: 3.1 s per iteration, 15
min): loss 139 -> 14.3 and 149 -> 13.2; AMOTA 0.145 / 0.018, recall 0.41 / 0.69, IDS 11 of 91 / 45 of 129 true
positives, drivable IoU 63.8 / 71.4, lanes IoU 12.3 / 32.6 (after 24 of the 36 epochs: lanes 32.7 / 34.2). As this
test runs it (seed 0, 2 threads, 17 min): loss 139 -> 12.9, AMOTA 0.066, recall 0.43, IDS 10 of 98, drivable 68.6,
lanes 15.9. After the track head's peak selection was reordered (carried tracks are moved before the fresh queries
are picked: the same operations, created in another order, and the results moved like a change of seed), seed 0 / 1
at 1 thread: AMOTA 0.089 / 0.027, recall 0.31 / 0.60, IDS 3 of 75 / 27 of 126, drivable 62.6 / 65.3, lanes 15.1 /
28.0; seed 0 at 2 threads on CI's machine: AMOTA 0.052, recall 0.25. The thresholds below sit under the worst of
these runs. The earlier schedule (UniAD's learned query references, 90 epochs, 720
iterations) reached AMOTA 0.13-0.30 and lanes 54-57 but took 16 minutes on a fast machine and more than 40 on CI's;
heatmap-initialised queries reach recall 0.87 after 12 epochs, where UniAD's queries do not reach the birth threshold
after 60.

The result depends on the number of intra-op threads and cannot be made independent of it: torch's CPU kernels
split their reductions (convolutions, matrix products) by thread, so the sums round differently in the last bits,
and 288 optimiser steps of a from-scratch tracker amplify such differences like a change of seed. The thresholds are
therefore set from runs that differ by seed.
"""
import json
import os
import subprocess
import sys
from glob import glob
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains through the tools (see tests/conftest.py)

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / 'configs' / 'uniad_nexusflow' / 'tiny_uniad_full.py'
EPOCHS = 36

OVERFIT = """
_base_ = ['{base}']
data_root = '{root}/'
ann_file = 'nuscenes_infos_temporal_train.pkl'
queue_length = 3
train_dataloader = dict(num_workers=0, persistent_workers=False,
                        dataset=dict(dataset=dict(data_root=data_root, ann_file=ann_file, queue_length=queue_length)))
test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root, ann_file=ann_file))
val_dataloader = test_dataloader
test_evaluator = [dict(type='NexusFlowNuScenesTrackingMetric', data_root=data_root, ann_file=data_root + ann_file,
                       version='v1.0-synth'),
                  dict(type='NexusFlowMapIoUMetric')]
val_evaluator = test_evaluator
model = dict(track_head=dict(heatmap_init=dict(loss_weight=10.0)))
optim_wrapper = dict(optimizer=dict(lr=2e-3))
train_cfg = dict(max_epochs={epochs}, val_interval={epochs} + 1)
param_scheduler = [dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=20),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end={epochs}, T_max={epochs},
                        eta_min_ratio=1e-2, convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(interval={epochs}), logger=dict(interval=4))
"""


def run(args, work_dir):
    # Two intra-op threads whatever an earlier in-process Runner left in OMP_NUM_THREADS (mmengine sets it to 1):
    # one thread makes the training about 1.5x slower on 2 cores.
    threads = os.environ.get('E2E_NUM_THREADS', str(min(2, os.cpu_count() or 1)))
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    out = subprocess.run([sys.executable, *args, '--work-dir', str(work_dir)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=2400)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out


def logged_losses(work_dir):
    (scalars, ) = glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    records = [json.loads(line) for line in Path(scalars).read_text().splitlines()]
    return [r['loss'] for r in records if 'loss' in r]


@pytest.fixture(scope='module')
def trained(synthetic_root, synthetic_infos, tmp_path_factory):
    work = tmp_path_factory.mktemp('e2e')
    config = work / 'tiny_overfit.py'
    config.write_text(OVERFIT.format(base=BASE, root=synthetic_root, epochs=EPOCHS))
    run(['tools/train.py', str(config)], work / 'train')
    ckpt = work / 'train' / f'epoch_{EPOCHS}.pth'
    out = run(['tools/test.py', str(config), str(ckpt)], work / 'test')
    (metrics, ) = glob(str(work / 'test' / '*' / '*.json'))
    return logged_losses(work / 'train'), json.loads(Path(metrics).read_text()), out.stdout + out.stderr


def test_loss_falls_by_a_large_factor(trained):
    losses, _, _ = trained
    assert len(losses) >= 10
    assert sum(losses[-3:]) / 3 < 0.3 * sum(losses[:3]) / 3, losses


def test_tracks_and_segments_the_clips_it_was_trained_on(trained):
    _, metrics, output = trained
    for name in ('track/amota', 'track/amotp', 'track/recall', 'track/ids', 'track/mota', 'track/fp', 'track/fn',
                 'track/frag', 'track/boston/amota', 'track/singapore/amota', 'map/lanes_iou', 'map/drivable_iou',
                 'map/divider_iou', 'map/crossing_iou', 'map/boundary_iou', 'map/boston/drivable_iou'):
        assert name in metrics, name
        assert name in output, f'tools/test.py did not print {name}'
    assert metrics['track/amota'] > 0.005, metrics
    assert metrics['track/recall'] > 0.2, metrics
    assert metrics['track/ids'] <= 0.5 * metrics['track/tp'], metrics
    assert metrics['map/drivable_iou'] > 55.0, metrics
    assert metrics['map/lanes_iou'] > 8.0, metrics
