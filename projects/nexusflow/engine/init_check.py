"""Refuse to train with frozen parameters that nothing initialised, and report what ``load_from`` sets.

A frozen module keeps the values it starts with. UniAD freezes its ResNet-101 because it starts from BEVFormer's
weights; the same config without them trains heads on a frozen *random* backbone, silently. Before training,
:func:`check_training_init` therefore

1. resolves the checkpoint the Runner will load: ``resume`` (an explicit path, or the latest checkpoint of the work
   dir for ``--resume`` without a path) or ``load_from``; a missing ``load_from`` file stops with how to make it
   (for the converted official files: the conversion command);
2. for ``load_from``, logs the missing / unexpected / shape-mismatched report of ``tools/test.py``
   (``evaluation/checkpoint_check.py``), by module;
3. collects the frozen parameters: ``requires_grad=False`` at build time (``frozen_stages``, ``frozen_modules``,
   ``norm_cfg.requires_grad=False``), everything below a ``FreezeModulesHook`` prefix, and the norm layers of
   modules with ``norm_eval=True`` (their statistics never update);
4. raises :class:`UninitialisedFrozenError` naming the modules whose frozen parameters neither the checkpoint (a key
   of the same shape) nor a ``Pretrained`` ``init_cfg`` of an enclosing module sets.
"""
import os.path as osp
from collections import Counter
from typing import Dict, Iterable, List, Optional, Set

from mmcv.cnn.bricks.norm import is_norm
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import find_latest_checkpoint
from torch import nn

from ..evaluation.checkpoint_check import compare_state_dicts, format_report, load_state_dict_from
from .freeze_hook import under_prefix

__all__ = ['UninitialisedFrozenError', 'CONVERTED_CHECKPOINTS', 'frozen_parameters', 'pretrained_prefixes',
           'missing_load_from_error', 'check_training_init']

#: converted official checkpoints the configs name -> how to make them
CONVERTED_CHECKPOINTS = {
    'bevformer_r101_dcn_24ep_nexusflow.pth': (
        'https://github.com/zhiqi-li/storage/releases/download/v1.0/bevformer_r101_dcn_24ep.pth',
        'python tools/model_converters/bevformer_to_nexusflow.py ckpts/bevformer_r101_dcn_24ep.pth '
        'ckpts/bevformer_r101_dcn_24ep_nexusflow.pth'),
    'uniad_base_track_map_nexusflow.pth': (
        'https://github.com/OpenDriveLab/UniAD/releases/download/v1.0/uniad_base_track_map.pth',
        'python tools/model_converters/uniad_to_nexusflow.py ckpts/uniad_base_track_map.pth '
        'ckpts/uniad_base_track_map_nexusflow.pth'),
    'r101_dcn_fcos3d_pretrain_nexusflow.pth': (
        'https://github.com/zhiqi-li/storage/releases/download/v1.0/r101_dcn_fcos3d_pretrain.pth',
        'python tools/model_converters/fcos3d_to_nexusflow.py ckpts/r101_dcn_fcos3d_pretrain.pth '
        'ckpts/r101_dcn_fcos3d_pretrain_nexusflow.pth'),
}


class UninitialisedFrozenError(RuntimeError):
    """Training would freeze parameters that keep their random initial values."""


def frozen_parameters(model: nn.Module, hook_prefixes: Iterable[str] = ()) -> Dict[str, nn.Parameter]:
    """Parameters that will not train: ``requires_grad=False``, below ``hook_prefixes``, or the norm layers of a
    module with ``norm_eval=True`` (named as in ``model.named_parameters()``)."""
    hook_prefixes = list(hook_prefixes)
    eval_norms = {f'{name}.{sub}' if sub else name
                  for name, module in model.named_modules() if getattr(module, 'norm_eval', False)
                  for sub, child in module.named_modules() if is_norm(child)}
    return {name: param for name, param in model.named_parameters()
            if not param.requires_grad or any(under_prefix(name, p) for p in hook_prefixes)
            or name.rsplit('.', 1)[0] in eval_norms}


def pretrained_prefixes(model: nn.Module) -> List[str]:
    """Module names with a ``Pretrained`` ``init_cfg`` (``''`` for the model itself)."""
    prefixes = []
    for name, module in model.named_modules():
        cfgs = getattr(module, 'init_cfg', None) or []
        cfgs = [cfgs] if isinstance(cfgs, dict) else list(cfgs)
        if any(cfg.get('type') == 'Pretrained' for cfg in cfgs):
            prefixes.append(name)
    return prefixes


def missing_load_from_error(path: str) -> FileNotFoundError:
    """The error for a ``load_from`` file that does not exist: for a converted official checkpoint, the download
    and conversion commands."""
    known = CONVERTED_CHECKPOINTS.get(osp.basename(path))
    if known:
        url, command = known
        how = (f'it is an official checkpoint converted for this project: download {url} to ckpts/, then run\n'
               f'    {command}\n(see README "Starting from BEVFormer / UniAD weights"), or pass '
               f'--cfg-options load_from=<your file>')
    else:
        how = 'train the config it comes from first, or pass --cfg-options load_from=<existing checkpoint>'
    return FileNotFoundError(f'load_from={path} does not exist; {how}')


def _checkpoint_keys(cfg: Config, model: nn.Module) -> Optional[Set[str]]:
    """Keys the Runner will load (shape-checked), all of them when resuming; ``None`` when nothing is loaded."""
    load_from = cfg.get('load_from')
    if cfg.get('resume', False):
        if load_from is None:
            load_from = find_latest_checkpoint(cfg.work_dir)
        if load_from is not None:
            return {name for name, _ in model.named_parameters()}
    if load_from is None:
        return None
    if '://' not in load_from and not osp.isfile(load_from):
        raise missing_load_from_error(load_from)
    model_state = model.state_dict()
    report = compare_state_dicts(model_state, load_state_dict_from(load_from))
    print_log(format_report(report, load_from), logger='current')
    unset = set(report['missing']) | {key for key, _, _ in report['shape_mismatch']}
    return set(model_state) - unset


def _group(names: List[str], depth: int = 3) -> str:
    groups = Counter('.'.join(name.split('.')[:depth]) for name in names)
    shown = [f'{module} ({count})' for module, count in sorted(groups.items())[:12]]
    return ', '.join(shown) + (f', +{len(groups) - 12} more' if len(groups) > 12 else '')


def check_training_init(model: nn.Module, cfg: Config) -> None:
    """Log the ``load_from`` report and refuse frozen parameters nothing initialises (module docstring).

    Args:
        model: the built model (a DDP wrapper is unwrapped).
        cfg: the training config (``load_from``, ``resume``, ``work_dir``, ``custom_hooks``).

    Raises:
        FileNotFoundError: ``load_from`` names a file that does not exist.
        UninitialisedFrozenError: frozen parameters are set by neither the checkpoint nor an ``init_cfg``.
    """
    model = model.module if is_model_wrapper(model) else model
    hook_prefixes = [p for hook in cfg.get('custom_hooks', []) if hook.get('type') == 'NexusFlowFreezeModulesHook'
                     for p in hook.get('modules', ())]
    frozen = frozen_parameters(model, hook_prefixes)
    loaded = _checkpoint_keys(cfg, model)
    if not frozen:
        return
    pretrained = pretrained_prefixes(model)
    unset = [name for name in frozen
             if (loaded is None or name not in loaded) and not any(under_prefix(name, p) or p == ''
                                                                   for p in pretrained)]
    if unset:
        raise UninitialisedFrozenError(
            f'training would freeze {len(unset)} parameter tensors that keep their random initial values, in '
            f'{_group(unset)}. Frozen here means frozen_stages / frozen_modules / FreezeModulesHook / norm layers '
            f'with requires_grad=False or norm_eval=True. Start from a checkpoint that sets them (load_from='
            f'{cfg.get("load_from")!r}; the paper configs expect ckpts/bevformer_r101_dcn_24ep_nexusflow.pth, see '
            f'README "Starting from BEVFormer / UniAD weights"), give the module a Pretrained init_cfg, or unfreeze '
            f'it (e.g. img_backbone.frozen_stages=-1, norm_cfg.requires_grad=True, norm_eval=False).')
