"""Cost benchmark of model configs side by side: parameters, predict time, train-step time and peak memory.

    python tools/benchmark.py CONFIG [CONFIG ...] [--iters N] [--warmup K] [--device cpu|cuda] \
        [--history-bev both|recompute|reuse] [--synthetic-data] [--threads T] [--seed S] [--forward-only] \
        [--max-rss-gb G] [--cfg-options key=value ...]
    # e.g. the NexusFlow overhead (targets: <= 1.05x step time, <= 1.10x peak memory against the baseline)
    python tools/benchmark.py BASELINE_CONFIG NEXUSFLOW_CONFIG --synthetic-data

Every run (a config, or a config in one history mode with ``--history-bev``) is measured in its own fresh process:
- parameters: total, trainable and per top-level module of the model built from the config, plug-ins included;
- train step: ``model.train_step`` (data preprocessor, forward, backward and the optimiser step of the config's
  ``optim_wrapper``, gradient clipping included) on one real batch of the config's train dataloader, loaded once
  (data loading is not timed; tools/benchmark_data.py measures it); median and minimum over ``--iters`` after
  ``--warmup``;
- predict: ``model.test_step`` without gradients on one frame (the last of the batch's first clip) continuing one
  stream, i.e. with a history BEV and live tracks (an untimed first call starts the stream);
- peak memory of the train steps (of the predict calls with ``--forward-only``): on CUDA from
  ``torch.cuda.max_memory_allocated``; on the CPU from the process's RSS high-water mark, reported as the increase
  over the RSS after setup. The CPU allocator has no peak counter and RSS counts everything the process ever
  loaded, so only a fresh process per run makes the numbers of two runs comparable (details:
  ``projects/nexusflow/engine/benchmark_utils.py``). The ratio columns compare every run's median step time and
  peak increase with the first run's.

Data: with ``--synthetic-data``, or when the config's training infos are missing, a small synthetic nuScenes set is
generated at the config's image size into a temporary folder (``generate_synthetic_nuscenes`` +
``create_nuscenes_infos``) and the config's train dataset is pointed at it, so full-size figures go through the
same code path as real nuScenes. Seeds are fixed (``--seed``); runs go one after another, single process each.
"""
import argparse
import contextlib
import copy
import logging
import math
import os
import os.path as osp
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import mmengine  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner, set_random_seed  # noqa: E402

from mmdet3d.registry import MODELS  # noqa: E402
from projects.nexusflow.datasets.converter import create_nuscenes_infos  # noqa: E402
from projects.nexusflow.datasets.synthetic import LOCATIONS, generate_synthetic_nuscenes  # noqa: E402
from projects.nexusflow.datasets.synthetic.generator import val_indices  # noqa: E402
from projects.nexusflow.engine.benchmark_utils import (PeakMemory, parameter_counts, process_rss_mib,  # noqa: E402
                                                       time_calls, timing_summary)
from tools.run_checks import check_overrides  # noqa: E402

HISTORY_MODES = ('recompute', 'reuse')
NUSCENES_IMG_SIZE = (1600, 900)  # (W, H) of the nuScenes cameras, used when the pipeline does not resize
SYNTH_VERSION = 'v1.0-synth'
SYNTH_SCENES_PER_CITY = 2  # the fewest that leave a train scene in every city (the rest goes to val)
SYNTH_TRAIN_SCENES = len(LOCATIONS) * (SYNTH_SCENES_PER_CITY - len(val_indices(SYNTH_SCENES_PER_CITY)))
MIN_SYNTH_SAMPLES = 6  # keyframes per synthetic scene, >= every shipped queue_length
WATCH_INTERVAL_S = 0.1
COST_HEADER = ['run', 'history', 'params', 'trainable', 'predict s', 'predict min s', 'step s', 'step min s',
               'setup MiB', '{phase} peak MiB', '{phase} +MiB', 'step x', 'mem x']  # '{phase}': train or predict


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='*', metavar='CONFIG', help='config files; the first is the reference')
    parser.add_argument('--iters', type=int, default=5, help='timed iterations per measurement (median)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed iterations before the timed ones')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--history-bev', choices=('both', ) + HISTORY_MODES,
                        help="run with model.history_bev set; 'both' runs 'recompute' and 'reuse' side by side")
    parser.add_argument('--synthetic-data', action='store_true',
                        help='measure on a generated synthetic set at the config image size even if data exists')
    parser.add_argument('--threads', type=int, default=default_threads(), help='torch threads (default: all cores)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the model, data order and synthetic data')
    parser.add_argument('--forward-only', action='store_true',
                        help='skip the train steps (for models whose training does not fit); memory of predict')
    parser.add_argument('--max-rss-gb', type=float,
                        help='stop a run whose resident memory exceeds this many GiB (Linux; protects shared machines)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override settings of every config, e.g. model.track_head.num_query=300')
    parser.add_argument('--worker', help=argparse.SUPPRESS)  # internal: run one measurement from this spec file
    args = parser.parse_args(argv)
    if args.worker is None and not args.configs:
        parser.error('give at least one CONFIG')
    if args.iters < 1 or args.warmup < 0 or args.threads < 1:
        parser.error(f'need --iters >= 1, --warmup >= 0, --threads >= 1; got {args.iters}, {args.warmup}, '
                     f'{args.threads}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda, but this torch build sees no CUDA device; use --device cpu')
    return args


def default_threads() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


def load_config(path: str, cfg_options: dict) -> Config:
    """``Config.fromfile(path)`` with ``cfg_options`` (dotted keys) merged in."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist')
    cfg = Config.fromfile(path)
    check_overrides(cfg, cfg_options)
    cfg.merge_from_dict(cfg_options)
    return cfg


# ---------------------------------------------------------------------------------------------- data selection
def leaf_datasets(node: dict, path: str) -> List[Tuple[str, dict]]:
    """``(dotted path, config)`` of every dataset config holding an ``ann_file`` below ``node`` (wrappers walked
    through ``dataset`` and ``datasets``)."""
    if 'ann_file' in node:
        return [(path, node)]
    leaves = []
    if isinstance(node.get('dataset'), dict):
        leaves += leaf_datasets(node['dataset'], f'{path}.dataset')
    for index, child in enumerate(node.get('datasets', [])):
        leaves += leaf_datasets(child, f'{path}.datasets.{index}')
    return leaves


def train_leaves(cfg: Config) -> List[Tuple[str, dict]]:
    leaves = leaf_datasets(cfg.train_dataloader.dataset, 'train_dataloader.dataset')
    if not leaves:
        raise ValueError('train_dataloader.dataset holds no dataset config with an ann_file (looked through '
                         "'dataset' and 'datasets' of wrappers); the benchmark needs a file-based train dataset")
    return leaves


def train_data_missing(cfg: Config) -> bool:
    """Whether any training info file of ``cfg`` is absent (relative paths are taken from the current folder)."""
    for _, leaf in train_leaves(cfg):
        ann_file = leaf['ann_file']
        path = ann_file if osp.isabs(ann_file) else osp.join(leaf.get('data_root', ''), ann_file)
        if not osp.isfile(path):
            return True
    return False


def train_img_size(cfg: Config) -> Tuple[int, int]:
    """``(W, H)`` of the network input: the ``ResizeMultiViewImages`` scale of the train pipeline, else nuScenes'."""
    for _, leaf in train_leaves(cfg):
        for transform in leaf.get('pipeline', []):
            if transform.get('type') == 'NexusFlowResizeMultiViewImages':
                return tuple(int(v) for v in transform['scale'])
    return NUSCENES_IMG_SIZE


@contextlib.contextmanager
def quiet_logs():
    """Raise the current mmengine logger to WARNING for the block, then restore its level."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class SyntheticSets:
    """Synthetic nuScenes sets generated on demand below ``root``, one per (image size, scene length).

    Args:
        root (str): folder to write into (a temporary folder of the benchmark).
        seed (int): generator seed.
    """

    def __init__(self, root: str, seed: int):
        self.root, self.seed = root, seed
        self.infos: Dict[Tuple[int, int, int], Dict[str, str]] = {}

    def infos_for(self, img_size: Tuple[int, int], samples_per_scene: int) -> Dict[str, str]:
        """Info pkl paths (``{'train': ..., 'val': ...}``) of the set with these images (``(W, H)``) and scenes."""
        key = (*img_size, samples_per_scene)
        if key not in self.infos:
            out_dir = osp.join(self.root, 'synth_{}x{}_{}'.format(*key))
            start = time.perf_counter()
            with quiet_logs(), contextlib.redirect_stdout(sys.stderr):  # the report stays readable
                generate_synthetic_nuscenes(out_dir, scenes_per_city=SYNTH_SCENES_PER_CITY,
                                            samples_per_scene=samples_per_scene, seed=self.seed, img_size=img_size)
                self.infos[key] = create_nuscenes_infos(out_dir, SYNTH_VERSION, out_dir, canbus_root=out_dir)
            print(f'generated a synthetic nuScenes set, {img_size[0]}x{img_size[1]} images, {samples_per_scene} '
                  f'keyframes per scene, in {time.perf_counter() - start:.1f} s: {out_dir}', flush=True)
        return self.infos[key]


def synthetic_overrides(cfg: Config, sets: SyntheticSets) -> Dict[str, str]:
    """Dotted config keys that point every train dataset of ``cfg`` at a synthetic set of its image size."""
    leaves = train_leaves(cfg)
    longest = max(leaf.get('queue_length', 1) for _, leaf in leaves)
    clips_per_scene = math.ceil(cfg.train_dataloader.batch_size / SYNTH_TRAIN_SCENES)  # enough for one full batch
    samples = max(MIN_SYNTH_SAMPLES, longest - 1 + clips_per_scene)
    infos = sets.infos_for(train_img_size(cfg), samples)
    overrides = {}
    for path, leaf in leaves:
        overrides.update({f'{path}.data_root': osp.dirname(infos['train']), f'{path}.ann_file': infos['train']})
        if 'version' in leaf:
            overrides[f'{path}.version'] = SYNTH_VERSION
    return overrides


def plan_runs(args, sets: SyntheticSets) -> List[dict]:
    """One measurement spec per config and history mode, with the data and mode overrides merged in."""
    modes = HISTORY_MODES if args.history_bev == 'both' else (args.history_bev, )
    runs = []
    for config in args.configs:
        cfg = load_config(config, args.cfg_options)
        options = dict(args.cfg_options)
        if args.synthetic_data or train_data_missing(cfg):
            if not args.synthetic_data:
                print(f'{config}: training infos not found, measuring on a synthetic set instead', flush=True)
            options.update(synthetic_overrides(cfg, sets))
        for mode in modes:
            name = Path(config).stem + (f' [{mode}]' if mode else '')
            run_options = dict(options, **({'model.history_bev': mode} if mode else {}))
            runs.append(dict(label=name, config=config, cfg_options=run_options, iters=args.iters,
                             warmup=args.warmup, device=args.device, threads=args.threads, seed=args.seed,
                             forward_only=args.forward_only))
    return runs


# ---------------------------------------------------------------------------------------------- one measurement
def first_train_batch(cfg: Config, seed: int) -> dict:
    """The first collated batch of the config's train dataloader, loaded in this process."""
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    return next(iter(Runner.build_dataloader(loader_cfg, seed=seed)))


def predict_batch(batch: dict) -> dict:
    """The last frame of the first clip of a training batch as a one-stream test batch (``Q = 1``, ``B = 1``)."""
    return dict(inputs=dict(img=[batch['inputs']['img'][0][-1:]]),
                data_samples=[[copy.deepcopy(batch['data_samples'][0][-1])]])


def measure_train(model, cfg: Config, batch: dict, spec: dict) -> dict:
    """Step times (s) and peak memory (MiB) of ``model.train_step`` with the config's optimiser wrapper."""
    device = torch.device(spec['device'])
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    with PeakMemory(device) as memory:
        times = time_calls(lambda: model.train_step(batch, optim_wrapper), spec['iters'], spec['warmup'], device)
    return dict(timing_summary(times), memory=memory.summary())


def measure_predict(model, batch: dict, spec: dict) -> dict:
    """Times (s) and peak memory (MiB) of ``model.test_step`` on one frame of a running stream."""
    device = torch.device(spec['device'])
    frame = predict_batch(batch)
    model.eval()
    with torch.no_grad():
        model.test_step(frame)  # starts the stream: the timed calls have a history BEV and tracks
        with PeakMemory(device) as memory:
            times = time_calls(lambda: model.test_step(frame), spec['iters'], spec['warmup'], device)
    return dict(timing_summary(times), memory=memory.summary())


def measure(spec: dict) -> dict:
    """Build the config's model and batch, then measure parameters, train steps (unless forward-only), predict."""
    torch.set_num_threads(spec['threads'])
    cfg = load_config(spec['config'], spec['cfg_options'])
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    set_random_seed(spec['seed'])
    batch = first_train_batch(cfg, spec['seed'])
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(torch.device(spec['device']))
    result = dict(label=spec['label'], history_bev=cfg.model.get('history_bev', '-'),
                  params=parameter_counts(model), clip_shape=list(batch['inputs']['img'][0].shape),
                  batch_size=len(batch['inputs']['img']))
    if not spec['forward_only']:
        result['train'] = measure_train(model, cfg, batch, spec)
    result['predict'] = measure_predict(model, batch, spec)
    return result


def run_worker(spec_path: str) -> None:
    spec = mmengine.load(spec_path)
    mmengine.dump(measure(spec), spec['output'])


def run_isolated(spec: dict, max_rss_gb: Optional[float]) -> dict:
    """Run ``measure(spec)`` in a fresh Python process; on failure the result holds ``error`` (and the log tail)."""
    with tempfile.TemporaryDirectory(prefix='nexusflow-bench-run-') as tmp:
        spec_path, out_path, log_path = (osp.join(tmp, name) for name in ('spec.pkl', 'result.pkl', 'worker.log'))
        mmengine.dump(dict(spec, output=out_path), spec_path)
        env = dict(os.environ, OMP_NUM_THREADS=str(spec['threads']))
        with open(log_path, 'w') as log:
            proc = subprocess.Popen([sys.executable, __file__, '--worker', spec_path], stdout=log,
                                    stderr=subprocess.STDOUT, env=env)
            stopped = watch_memory(proc, max_rss_gb)
        if stopped:
            return dict(label=spec['label'], error=f'stopped: resident memory exceeded --max-rss-gb {max_rss_gb}')
        if proc.returncode != 0 or not osp.isfile(out_path):
            with open(log_path) as log:
                tail = ''.join(log.readlines()[-15:])
            cause = ' (SIGKILL: most likely the system ran out of memory)' if proc.returncode == -signal.SIGKILL else ''
            return dict(label=spec['label'], error=f'worker exited with code {proc.returncode}{cause}:\n{tail}')
        return mmengine.load(out_path)


def watch_memory(proc: subprocess.Popen, max_rss_gb: Optional[float]) -> bool:
    """Wait for ``proc``; kill it (and return ``True``) as soon as its RSS exceeds ``max_rss_gb`` GiB."""
    if max_rss_gb is None:
        proc.wait()
        return False
    while proc.poll() is None:
        if process_rss_mib(proc.pid) > max_rss_gb * 1024:
            proc.kill()
            proc.wait()
            return True
        time.sleep(WATCH_INTERVAL_S)
    return False


# ---------------------------------------------------------------------------------------------- report
def format_table(header: List[str], rows: List[List[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append('  '.join(cells))
    return '\n'.join(lines)


def ratio(value: float, reference: float) -> str:
    """``value / reference`` with two decimals ('-' without a positive reference)."""
    return f'{value / reference:.2f}' if reference > 0 else '-'


def cost_row(result: dict, reference: dict, phase: str) -> List[str]:
    """The cost-table cells of one run; ratios against ``reference``; memory of ``phase`` ('train' | 'predict')."""
    params, predict, train = result['params'], result['predict'], result.get('train')
    memory = result[phase]['memory']
    step_cells = [f"{train['median']:.3f}", f"{train['min']:.3f}"] if train else ['-', '-']
    step_ratio = ratio(train['median'], reference['train']['median']) if train else '-'
    return [result['label'], result['history_bev'], f"{params['total'] / 1e6:.3f}M",
            f"{params['trainable'] / 1e6:.3f}M", f"{predict['median']:.3f}", f"{predict['min']:.3f}", *step_cells,
            f"{memory['start_mib']:.0f}", f"{memory['total_peak_mib']:.0f}", f"{memory['peak_mib']:.0f}", step_ratio,
            ratio(memory['peak_mib'], reference[phase]['memory']['peak_mib'])]


def cost_table(results: List[dict]) -> str:
    """One row per run: parameters, predict and step times (median, min), memory, ratios to the first run."""
    phase = 'train' if 'train' in results[0] else 'predict'
    header = [name.format(phase=phase) for name in COST_HEADER]
    return format_table(header, [cost_row(result, results[0], phase) for result in results])


def params_table(results: List[dict]) -> str:
    """Exact parameter counts per top-level module (rows) and run (columns), with total and trainable rows."""
    modules = list(dict.fromkeys(name for result in results for name in result['params']['per_module']))
    rows = [[name] + [f"{result['params']['per_module'].get(name, 0):,}" for result in results]
            for name in modules]
    rows += [[key] + [f"{result['params'][key]:,}" for result in results] for key in ('total', 'trainable')]
    return format_table(['module'] + [result['label'] for result in results], rows)


def report(results: List[dict], args, loads: Tuple[tuple, tuple]) -> str:
    """The printed report: settings, cost table, parameter table, failed runs."""
    done = [result for result in results if 'error' not in result]
    lines = [f'device {args.device}, {args.threads} torch threads, seed {args.seed}, median over {args.iters} '
             f'iteration(s) after {args.warmup} warm-up; load average (1/5/15 min) '
             f"{' '.join(f'{v:.2f}' for v in loads[0])} before, {' '.join(f'{v:.2f}' for v in loads[1])} after"]
    if done:
        first = done[0]
        memory = first['train' if 'train' in first else 'predict']['memory']
        lines += ['', cost_table(done), '',
                  f"clip {first['clip_shape']} (Q, N, 3, H, W) x batch {first['batch_size']}; predict: 1 frame, 1 "
                  f"stream; memory: {memory['method']}; +MiB = peak minus setup; ratios vs {first['label']}",
                  '', 'parameters per top-level module:', params_table(done)]
    lines += [f"FAILED {result['label']}: {result['error']}" for result in results if 'error' in result]
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        MMLogger.get_instance('nexusflow-benchmark', log_level='WARNING')  # the worker's log is shown on failure only
        run_worker(args.worker)
        return 0
    with tempfile.TemporaryDirectory(prefix='nexusflow-bench-data-') as data_dir:
        runs = plan_runs(args, SyntheticSets(data_dir, args.seed))
        load_before = os.getloadavg()
        results = []
        for index, spec in enumerate(runs):
            print(f'[{index + 1}/{len(runs)}] {spec["label"]}: measuring in a fresh process', flush=True)
            results.append(run_isolated(spec, args.max_rss_gb))
        load_after = os.getloadavg()
    print(report(results, args, (load_before, load_after)))
    return 1 if any('error' in result for result in results) else 0


if __name__ == '__main__':
    sys.exit(main())
