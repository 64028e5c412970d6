"""Side-by-side training cost of NYUv2 / MTAN configs (baseline, MTPSL, NexusFlow): step time and peak memory.

    python tools/benchmark_nyuv2.py [CONFIG ...] [--img-size H W] [--iters N] [--warmup K] [--device cpu|cuda] \
        [--threads T] [--seed S] [--data-root DIR] [--cfg-options key=value ...]
    # the paper's Table 5 at full size (MTAN, 288x384, batch 2): baseline, MTPSL, NexusFlow (the default configs);
    # paper: MTPSL 1.25x step time / 2.28x memory, NexusFlow 1.00x / 1.17x (targets: <= 1.05x, <= 1.10x)
    python tools/benchmark_nyuv2.py --iters 3
    python tools/benchmark_nyuv2.py configs/mtan_nexusflow/tiny_mtan_baseline.py \
        configs/mtan_nexusflow/tiny_mtan_mtpsl.py configs/mtan_nexusflow/tiny_mtan_nexusflow_center.py --img-size 72 96

Every config is measured in its own fresh (spawned) process, on the same first batch of its train dataloader
(loaded once, not timed): ``model.train_step`` with the config's optimiser (forward, backward, step), median over
``--iters`` after ``--warmup``; peak memory of those steps with ``PeakMemory`` (CUDA: max allocated; CPU: RSS
high-water mark minus the RSS before the steps, see ``projects/nexusflow/engine/benchmark_utils.py``). Without
``--data-root`` a few synthetic NYUv2-like images of ``--img-size`` are generated into a temporary folder. Ratios
compare every config with the first one; the ``paper`` columns give the same ratios from the N-task NexusFlow paper's
cost table (Table 5, A100: baseline 8 h / 3906 MiB, MTPSL 10 h / 8900 MiB, NexusFlow 8 h / 4554 MiB) for the method
of each config (its plug-in: none, ``MTPSL`` or ``NexusFlow``).
"""
import argparse
import copy
import multiprocessing
import os
import sys
import tempfile
from pathlib import Path
from typing import List

REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner, set_random_seed  # noqa: E402

from mmdet3d.registry import MODELS  # noqa: E402
from projects.nexusflow.engine.benchmark_utils import (PeakMemory, parameter_counts, time_calls,  # noqa: E402
                                                       timing_summary)
from projects.nexusflow.nyuv2.meta import NYUV2_SIZE  # noqa: E402
from projects.nexusflow.nyuv2.synthetic import generate_synthetic_nyuv2  # noqa: E402
from tools.benchmark import format_table, ratio  # noqa: E402

SYNTH_IMAGES = 6  # enough for a batch of every shipped config and for the three clusters
CONFIG_DIR = Path(REPO_ROOT) / 'configs' / 'mtan_nexusflow'
TABLE5_CONFIGS = [str(CONFIG_DIR / f'{name}.py')
                  for name in ('mtan_baseline_cluster', 'mtan_mtpsl_cluster', 'mtan_nexusflow_center')]
# N-task NexusFlow paper, Table 5 (NYUv2, MTAN, one A100): method -> (training time h, GPU memory MiB)
PAPER_COST = {'baseline': (8.0, 3906.0), 'MTPSL': (10.0, 8900.0), 'NexusFlow': (8.0, 4554.0)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='*', metavar='CONFIG', default=TABLE5_CONFIGS,
                        help='config files; the first is the reference (default: the full-size baseline, MTPSL and '
                        'NexusFlow rows of Table 5)')
    parser.add_argument('--img-size', type=int, nargs=2, default=NYUV2_SIZE, metavar=('H', 'W'),
                        help='size of the generated images (without --data-root)')
    parser.add_argument('--data-root', help='an NYUv2-format root to read the batch from instead')
    parser.add_argument('--iters', type=int, default=5, help='timed train steps (median)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed train steps first')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads of every measurement')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides applied to every config, e.g. train_dataloader.batch_size=4')
    return parser.parse_args(argv)


def method_of(model_cfg: dict) -> str:
    """The method of a model config: ``'baseline'`` without plug-ins, else the plug-ins' class names (registered as
    ``NexusFlow<class name>`` except ``NexusFlow`` itself) joined by ``+``."""
    return '+'.join(MODELS.get(plugin['type']).__name__ for plugin in model_cfg.get('plugins') or []) or 'baseline'


def measure(spec: dict) -> dict:
    """Build one config's model and first train batch, then time its train steps and read their peak memory."""
    torch.set_num_threads(spec['threads'])
    cfg = Config.fromfile(spec['config'])
    cfg.merge_from_dict(spec['cfg_options'])
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    set_random_seed(spec['seed'])
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader_cfg.dataset.data_root = spec['data_root']
    batch = next(iter(Runner.build_dataloader(loader_cfg, seed=spec['seed'])))
    device = torch.device(spec['device'])
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(device)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    with PeakMemory(device) as memory:
        times = time_calls(lambda: model.train_step(batch, optim_wrapper), spec['iters'], spec['warmup'], device)
    return dict(label=Path(spec['config']).stem, method=method_of(cfg.model), params=parameter_counts(model),
                step=timing_summary(times),
                memory=memory.summary(), batch_shape=[len(batch['inputs'])] + list(batch['inputs'][0].shape))


def paper_ratios(method: str, reference: str) -> List[str]:
    """Table 5's time and memory ratios of ``method`` to ``reference`` (``'-'`` when either is not in the table)."""
    if method not in PAPER_COST or reference not in PAPER_COST:
        return ['-', '-']
    return [ratio(value, base) for value, base in zip(PAPER_COST[method], PAPER_COST[reference])]


def report(results: List[dict]) -> str:
    """Table of parameters, step time and peak memory with ratios to the first config (measured and paper)."""
    reference = results[0]
    rows = [[r['label'], r['method'], f"{r['params']['total'] / 1e6:.3f}M", f"{r['step']['median']:.3f}",
             f"{r['step']['min']:.3f}", f"{r['memory']['start_mib']:.0f}", f"{r['memory']['peak_mib']:.0f}",
             ratio(r['step']['median'], reference['step']['median']),
             ratio(r['memory']['peak_mib'], reference['memory']['peak_mib'])]
            + paper_ratios(r['method'], reference['method']) for r in results]
    table = format_table(['config', 'method', 'params', 'step s', 'step min s', 'setup MiB', 'step +MiB', 'step x',
                          'mem x', 'paper step x', 'paper mem x'], rows)
    return (f"{table}\nbatch {reference['batch_shape']} (B, 3, H, W); memory: {reference['memory']['method']}; "
            f"ratios vs {reference['label']}")


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='nexusflow-nyuv2-bench-') as tmp:
        data_root = args.data_root
        if data_root is None:
            data_root = os.path.join(tmp, 'nyuv2-synth')
            generate_synthetic_nyuv2(data_root, num_train=SYNTH_IMAGES, num_val=0, img_size=tuple(args.img_size),
                                     seed=args.seed)
        context = multiprocessing.get_context('spawn')
        results = []
        for config in args.configs:
            spec = dict(config=config, cfg_options=args.cfg_options, data_root=data_root, iters=args.iters,
                        warmup=args.warmup, device=args.device, threads=args.threads, seed=args.seed)
            print(f'measuring {config} in a fresh process', flush=True)
            with context.Pool(1) as pool:
                results.append(pool.apply(measure, (spec, )))
    print(f'device {args.device}, {args.threads} torch thread(s), median over {args.iters} step(s) after '
          f'{args.warmup} warm-up, load average {os.getloadavg()[0]:.2f}')
    print(report(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
