"""Launch helpers shared by tools/train.py and tools/test.py.

mmengine 0.10.7 assumes CUDA when it starts a distributed job: ``init_dist('pytorch')`` calls
``torch.cuda.set_device`` (AttributeError on CPU builds of torch) and ``Runner.wrap_model`` passes
``device_ids=[LOCAL_RANK]`` to DDP (rejected for CPU modules). ``setup_cpu_distributed`` lets
``torchrun --nproc_per_node N tools/test.py CONFIG CKPT --launcher pytorch`` run on CPU with the gloo backend:
it initialises the process group itself (the Runner then skips its own initialisation) and sets
``model_wrapper_cfg.device_ids = None``. With CUDA present it does nothing. ``finish_distributed`` destroys the
process group when the job is done: a process that exits with it alive can abort in the collective backend's
threads at interpreter exit (``terminate called without an active exception``) after a successful run.
"""
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from mmengine.config import Config

__all__ = ['finish_distributed', 'setup_cpu_distributed']


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a CPU-only distributed run of ``cfg`` (``cfg.launcher`` set); return whether it did anything.

    Raises:
        ValueError: a launcher other than ``pytorch``, or a backend other than ``gloo``, on a machine without CUDA.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    backend = dist_cfg.get('backend', 'nccl')
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs CUDA with mmengine 0.10.7; on CPU use --launcher pytorch '
                         f'(torchrun, tools/dist_train.sh / tools/dist_test.sh)')
    if backend != 'gloo':
        raise ValueError(f'a distributed run without CUDA needs the gloo backend, but env_cfg.dist_cfg.backend is '
                         f'{backend!r}; set it in the config or pass --cfg-options env_cfg.dist_cfg.backend=gloo')
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', timeout=timedelta(seconds=dist_cfg.get('timeout', 1800)))
    if cfg.get('model_wrapper_cfg', None) is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg.setdefault('device_ids', None)
    return True


def finish_distributed() -> None:
    """Wait for every process, then destroy the default process group (nothing to do outside a distributed run)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
