"""Test a checkpoint with the test loop of an mmengine config (mmdet3d's tools/test.py flow).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options key=value ...] \
        [--launcher none|pytorch|slurm|mpi] [--show-dir DIR] [--max-missing-ratio 0.1]
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [same options]     # torchrun, --launcher pytorch

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

from tools.launch_utils import setup_cpu_distributed, trust_checkpoints  # noqa: E402
from tools.run_checks import check_overrides  # noqa: E402

from projects.nexusflow.engine.visualization_hook import enable_visualization  # noqa: E402
from projects.nexusflow.evaluation import check_checkpoint, check_checkpoint_file  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument('--work-dir', help='the dir to save logs and evaluation outputs '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--show-dir', help='draw one PNG per test frame, GT vs predicted tracks and map '
                        '(TrackMapVisualizationHook), into DIR (a relative DIR lies in <work_dir>/<timestamp>/)')
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
    if args.show_dir is not None:
        enable_visualization(cfg, args.show_dir)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    setup_cpu_distributed(cfg)
    trust_checkpoints()
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    check_checkpoint(model, args.checkpoint, max_missing_ratio=args.max_missing_ratio)
    runner.test()


if __name__ == '__main__':
    main()
