"""tools/benchmark.py and engine/benchmark_utils.py: parameter split, timing, peak memory, config plumbing, report."""
import importlib.util
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from projects.nexusflow.engine.benchmark_utils import PeakMemory, parameter_counts, time_calls, timing_summary

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / 'configs' / 'uniad_nexusflow' / 'tiny_uniad_full.py')
needs_proc = pytest.mark.skipif(not os.access('/proc/self/clear_refs', os.W_OK),
                                reason='needs Linux /proc with a writable /proc/self/clear_refs')


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('tool_benchmark', REPO / 'tools' / 'benchmark.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(5))
        self.encoder = nn.Linear(3, 4)  # 16
        self.frozen = nn.Linear(4, 2)  # 10
        self.frozen.requires_grad_(False)
        self.head = nn.Sequential(self.encoder, nn.Linear(4, 1))  # shares encoder; own part 5
        self.empty = nn.ReLU()


def test_parameter_counts_split_the_total_exactly():
    counts = parameter_counts(Toy())
    assert counts['per_module'] == {'encoder': 16, 'frozen': 10, 'head': 5, 'empty': 0, '(own)': 5}
    assert counts['total'] == 36 == sum(counts['per_module'].values())
    assert counts['trainable'] == 26


def test_time_calls_warmup_and_summary():
    calls = []
    times = time_calls(lambda: (calls.append(1), time.sleep(0.01)), iters=3, warmup=2, device=torch.device('cpu'))
    assert len(calls) == 5 and len(times) == 3 and all(0.01 <= t < 1.0 for t in times)
    assert timing_summary([3.0, 1.0, 2.0]) == dict(median=2.0, min=1.0, max=3.0)
    with pytest.raises(ValueError, match='iters'):
        time_calls(lambda: None, iters=0, warmup=0, device=torch.device('cpu'))


@needs_proc
def test_peak_memory_counts_the_phase_only():
    with PeakMemory(torch.device('cpu')) as phase:
        block = np.ones(200 * 2 ** 20 // 8)  # 200 MiB, touched
        del block
    assert 'VmHWM' in phase.method
    assert 195 < phase.peak_mib < 260 and phase.total_peak_mib == pytest.approx(phase.start_mib + phase.peak_mib)
    with PeakMemory(torch.device('cpu')) as idle:
        small = np.ones(2 ** 20 // 8)  # 1 MiB
    assert small.sum() == 2 ** 17 and idle.peak_mib < 20  # the 200 MiB of the previous phase is not counted


@needs_proc
def test_memory_guard_stops_a_growing_process(bench):
    proc = subprocess.Popen([sys.executable, '-c', 'import time, numpy; a = numpy.ones(2 ** 28 // 8); '
                             'b = numpy.ones(2 ** 28 // 8); time.sleep(30)'])
    start = time.perf_counter()
    assert bench.watch_memory(proc, max_rss_gb=0.2) is True
    assert proc.returncode is not None and time.perf_counter() - start < 20


def test_config_helpers_and_synthetic_overrides(bench, tmp_path):
    cfg = bench.load_config(TINY, {'train_dataloader.dataset.dataset.data_root': str(tmp_path),
                                   'train_dataloader.batch_size': 8})
    assert [path for path, _ in bench.train_leaves(cfg)] == ['train_dataloader.dataset.dataset']
    assert bench.train_img_size(cfg) == (224, 128)
    assert bench.train_data_missing(cfg)

    class FakeSets:
        def infos_for(self, img_size, samples_per_scene):
            self.request = (img_size, samples_per_scene)
            return {'train': '/synth/infos_train.pkl', 'val': '/synth/infos_val.pkl'}

    sets = FakeSets()
    overrides = bench.synthetic_overrides(cfg, sets)
    assert sets.request == ((224, 128), 6)  # queue 3 - 1 + 8 clips over 2 train scenes = 6 = the minimum
    assert overrides == {'train_dataloader.dataset.dataset.data_root': '/synth',
                         'train_dataloader.dataset.dataset.ann_file': '/synth/infos_train.pkl',
                         'train_dataloader.dataset.dataset.version': 'v1.0-synth'}
    cfg.train_dataloader.dataset.dataset.queue_length = 5
    bench.synthetic_overrides(cfg, sets)
    assert sets.request == ((224, 128), 8)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        bench.load_config(str(tmp_path / 'missing.py'), {})


def test_plan_runs_expands_history_modes(bench, tmp_path):
    (tmp_path / 'infos.pkl').touch()  # the config's data "exists": no synthetic set is needed
    args = bench.parse_args([TINY, '--history-bev', 'both', '--iters', '2', '--cfg-options',
                             'model.track_head.num_query=50', f'train_dataloader.dataset.dataset.data_root={tmp_path}',
                             'train_dataloader.dataset.dataset.ann_file=infos.pkl'])
    runs = bench.plan_runs(args, sets=None)
    assert [run['label'] for run in runs] == ['tiny_uniad_full [recompute]', 'tiny_uniad_full [reuse]']
    assert [run['cfg_options']['model.history_bev'] for run in runs] == ['recompute', 'reuse']
    assert all(run['cfg_options']['model.track_head.num_query'] == 50 and run['iters'] == 2 for run in runs)


def test_ratios_and_table(bench):
    assert bench.ratio(3.0, 2.0) == '1.50' and bench.ratio(0.7, 0.7) == '1.00' and bench.ratio(1.0, 0.0) == '-'
    table = bench.format_table(['run', 'x'], [['a', '1'], ['bbb', '22']])
    assert table.splitlines() == ['run   x', 'a     1', 'bbb  22']


def parse_cost_row(output, label):
    header = next(line for line in output.splitlines() if line.startswith('run '))
    row = next(line for line in output.splitlines() if line.startswith(label + ' '))
    names = re.split(r'\s{2,}', header.strip())
    return dict(zip(names, re.split(r'\s{2,}', row.strip())))


def test_end_to_end_on_the_tiny_config(bench, synthetic_infos, capsys):
    """One isolated run of the real tiny model on the session's synthetic set; about 20-40 s on 2 busy cores."""
    root = str(Path(synthetic_infos['train']).parent)
    status = bench.main([TINY, '--iters', '1', '--warmup', '0', '--threads', '1', '--cfg-options',
                         f'train_dataloader.dataset.dataset.data_root={root}',
                         f"train_dataloader.dataset.dataset.ann_file={synthetic_infos['train']}",
                         'train_dataloader.dataset.dataset.version=v1.0-synth'])
    output = capsys.readouterr().out
    assert status == 0, output
    row = parse_cost_row(output, 'tiny_uniad_full')
    assert row['step x'] == '1.00' and row['mem x'] == '1.00' and row['history'] == 'reuse'
    for key in ('predict s', 'predict min s', 'step s', 'step min s', 'setup MiB', 'train peak MiB', 'train +MiB'):
        assert math.isfinite(float(row[key])) and float(row[key]) > 0, (key, row)
    assert float(row['train peak MiB']) == pytest.approx(float(row['setup MiB']) + float(row['train +MiB']), abs=1)
    modules = {}
    for line in output.split('parameters per top-level module:')[1].strip().splitlines()[1:]:
        name, value = line.split()
        modules[name] = int(value.replace(',', ''))
    total, trainable = modules.pop('total'), modules.pop('trainable')
    assert sum(modules.values()) == total == trainable
    assert total / 1e6 == pytest.approx(float(row['params'].rstrip('M')), abs=1e-3)
    assert set(modules) == {'data_preprocessor', 'img_backbone', 'img_neck', 'bev_encoder', 'track_head',
                            'map_head', 'plugins'} and modules['plugins'] == 0 and modules['img_backbone'] > 0
