"""Train a model from an mmengine config (mmdet3d's tools/train.py flow).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT|auto] | --overwrite] [--amp] [--auto-scale-lr] \
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
    tools/dist_train.sh CONFIG GPUS [same options]          # torchrun, --launcher pytorch

Before training it logs the world size, the total batch (world size x batch per GPU) and the effective learning
rate (scaled by total batch / auto_scale_lr.base_batch_size when --auto-scale-lr is on), the three numbers that
explain most reproduction gaps between GPU counts.

A work dir that holds checkpoints of an earlier run is refused unless the run resumes (--resume) or --overwrite
deletes them first; --cfg-options keys that would be ignored (the config file's own variables such as lr or
geo_split) are refused with the settings to override instead (tools/run_checks.py).
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
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from projects.nexusflow.engine import check_training_init  # noqa: E402
from tools.launch_utils import finish_distributed, setup_cpu_distributed  # noqa: E402
from tools.run_checks import check_overrides, checkpoint_to_load, prepare_work_dir  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models (default: ./work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision (AmpOptimWrapper)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by total batch / auto_scale_lr.base_batch_size of the config')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or from the latest one in the work dir when no '
                        'path is given')
    parser.add_argument('--overwrite', action='store_true',
                        help='delete the checkpoints of an earlier run in the work dir (refused without it)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_dataloader.batch_size=2 '
                        'optim_wrapper.optimizer.lr=1e-4 (lists: key="[a,b]")')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torch.distributed.launch passes --local-rank / --local_rank; torchrun sets LOCAL_RANK instead
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    """The config of ``args.config`` with the command-line overrides applied (no side effects)."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    check_overrides(cfg, args.cfg_options)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config', logger='current')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise KeyError('--auto-scale-lr needs auto_scale_lr = dict(enable=False, base_batch_size=N) in the '
                           'config (N = the total batch the learning rate was tuned for)')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def scale_summary(world_size: int, cfg: Config) -> str:
    """One line with the world size, total batch and effective learning rate of a run of ``cfg``."""
    batch = cfg.train_dataloader.batch_size
    total = world_size * batch
    lr = cfg.optim_wrapper.optimizer.get('lr', float('nan'))
    scale = cfg.get('auto_scale_lr', {})
    if scale.get('enable', False):
        rule = f'auto_scale_lr on: x {total}/{scale["base_batch_size"]}'
        effective = lr * total / scale['base_batch_size']
    else:
        rule, effective = 'auto_scale_lr off', lr
    return (f'world size {world_size} x batch {batch} per process = total batch {total}; base lr {lr:g}, '
            f'effective lr {effective:g} ({rule})')


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    prepare_work_dir(cfg.work_dir, resume=bool(cfg.get('resume', False)), overwrite=args.overwrite)
    checkpoint_to_load(cfg)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    print_log(scale_summary(runner.world_size, cfg), logger='current')
    check_training_init(runner.model, cfg)
    runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
