"""Test a checkpoint with the test loop of an mmengine config (mmdet3d's tools/test.py flow).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options key=value ...] \
        [--launcher none|pytorch|slurm|mpi] [--max-missing-ratio 0.1] [--out results.pkl] \
        [--show] [--show-dir DIR] [--score-thr 0.1] [--wait-time 2] [--task multi-view_det|lidar_det]
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [same options]     # torchrun, --launcher pytorch

Drawing (as mmdet3d's tools/test.py): --show / --show-dir switch on default_hooks.visualization
(TrackMapVisualizationHook), which draws each test frame through the config's TrackMapLocalVisualizer: BEV GT vs
prediction (boxes with track ids, map masks) and, for --task multi-view_det (default), the six cameras with the
projected boxes; --task lidar_det draws the BEV panels only (the model is camera-only: no point cloud is drawn).
--show-dir writes DIR/<scene_name>/<frame_idx>_<token>.png; --show opens a window per frame for --wait-time s.
Neither sends drawings to the vis_backends (as in mmdet3d); for TensorBoard / W&B use
--cfg-options default_hooks.visualization.draw=True (images 'test sample' in <work_dir>/<timestamp>/vis_data).
--out adds mmengine's DumpResults to the test evaluators (one dict or a list): a pickle of the predicted data
samples, which tools/visualize.py results draws again without the model.

Before testing, the checkpoint is compared with the model built from the config: a concise report of missing,
unexpected and shape-mismatched tensors is logged, and the run stops with "checkpoint does not match config" when
any shape differs or more than --max-missing-ratio of the model state would stay unset. Use the config's
SceneAwareSampler for the test dataloader so that the metrics do not depend on the number of processes.
"""
import argparse
import os
import os.path as osp
import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.model import is_model_wrapper  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from tools.launch_utils import finish_distributed, setup_cpu_distributed  # noqa: E402
from tools.run_checks import check_overrides  # noqa: E402

from projects.nexusflow.engine.visualization_hook import enable_visualization  # noqa: E402
from projects.nexusflow.evaluation import check_checkpoint, check_checkpoint_file  # noqa: E402
from projects.nexusflow.visualization import VIS_TASKS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument('--work-dir', help='the dir to save logs and evaluation outputs '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--out', help='dump the predicted data samples into this pickle (.pkl / .pickle; '
                        'mmengine DumpResults, added to the test evaluators)')
    parser.add_argument('--show', action='store_true', help='show each drawn test frame in a window')
    parser.add_argument('--show-dir', help='draw one PNG per test frame, GT vs predicted tracks and map, into DIR '
                        '(a relative DIR lies in <work_dir>/<timestamp>/)')
    parser.add_argument('--score-thr', type=float, default=0.1,
                        help='draw predicted boxes with score >= this (default 0.1, as mmdet3d)')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each --show window stays (default 2)')
    parser.add_argument('--task', choices=sorted(VIS_TASKS), default='multi-view_det',
                        help='what to draw: ' + '; '.join(f'{name}: {what}' for name, what in VIS_TASKS.items()))
    parser.add_argument('--max-missing-ratio', type=float, default=0.1,
                        help='largest fraction of the model state the checkpoint may leave unset (default 0.1)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. test_dataloader.dataset.ann_file=... '
                        '(lists: key="[a,b]")')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    """The config of ``args.config`` with the command-line overrides applied (no side effects)."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    if '://' not in args.checkpoint:
        check_checkpoint_file(args.checkpoint)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    check_overrides(cfg, args.cfg_options)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, test_out_dir=args.show_dir, show=args.show, wait_time=args.wait_time,
                             score_thr=args.score_thr, vis_task=args.task)
    if args.out is not None:
        add_dump_results(cfg, args.out)
    return cfg


def add_dump_results(cfg: Config, out: str) -> None:
    """Append mmengine's ``DumpResults`` writing ``out`` to ``cfg.test_evaluator`` (a metric dict, a list of them,
    or an ``Evaluator`` dict with ``metrics``), keeping the configured metrics.

    Raises:
        ValueError: ``out`` is not a ``.pkl`` / ``.pickle`` file (what ``DumpResults`` writes).
    """
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out {out}: the results dump is a pickle, name it *.pkl or *.pickle')
    dump = dict(type='DumpResults', out_file_path=out)
    evaluator = cfg.get('test_evaluator', None)
    if evaluator is None:
        cfg.test_evaluator = [dump]
    elif isinstance(evaluator, dict) and 'metrics' in evaluator:
        metrics = evaluator['metrics']
        cfg.test_evaluator = dict(evaluator, metrics=(list(metrics) if isinstance(metrics, (list, tuple))
                                                      else [metrics]) + [dump])
    else:
        cfg.test_evaluator = (list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]) + [dump]


def main(argv=None) -> dict:
    """Test the checkpoint; returns the metrics of the test evaluators."""
    args = parse_args(argv)
    cfg = build_config(args)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    check_checkpoint(model, args.checkpoint, max_missing_ratio=args.max_missing_ratio)
    metrics = runner.test()
    finish_distributed()
    return metrics


if __name__ == '__main__':
    main()
