"""Compare a checkpoint with a model before testing: a concise missing / unexpected / shape-mismatch report.

mmengine loads checkpoints with ``strict=False`` and prints every missing key, which hides a wrong checkpoint in
hundreds of log lines (UniAD#181, #256). ``check_checkpoint`` summarises the differences by module and refuses a
checkpoint that leaves more than a set fraction of the model unset or that has any shape mismatch.
"""
import os.path as osp
import re
import zipfile
from collections import Counter
from typing import Dict, List, Mapping, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['CheckpointMismatchError', 'CheckpointReadError', 'check_checkpoint_file', 'load_state_dict_from',
           'compare_state_dicts', 'format_report', 'check_checkpoint']


class CheckpointMismatchError(ValueError):
    """The checkpoint does not match the model built from the config."""


class CheckpointReadError(ValueError):
    """A checkpoint file is empty, truncated or not a checkpoint."""


def _unreadable(checkpoint: str, problem: str) -> CheckpointReadError:
    return CheckpointReadError(f'checkpoint {checkpoint} {problem}; it was probably cut short by an interrupted save '
                               f'or copy. Use another checkpoint of the run (work_dir/epoch_N.pth) or copy it again.')


def _unsupported_global(err: Exception) -> str:
    """The first global torch's weights-only unpickler refused, as named in ``err``."""
    match = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(err))
    return f'first refused: {match.group(1)}' if match else 'a class that is not a tensor or plain data'


def check_checkpoint_file(checkpoint: str) -> None:
    """Cheap completeness check of a local checkpoint file, without loading it.

    ``torch.save`` writes a zip archive whose central directory comes last, so a truncated file lacks it.

    Raises:
        FileNotFoundError: no such file.
        CheckpointReadError: the file is empty, or a zip archive without its central directory.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist; pass the .pth written by '
                                f'tools/train.py (work_dirs/<config>/epoch_N.pth)')
    with open(checkpoint, 'rb') as f:
        head = f.read(4)
    if not head:
        raise _unreadable(checkpoint, 'is empty (0 bytes)')
    if head == b'PK\x03\x04' and not zipfile.is_zipfile(checkpoint):
        raise _unreadable(checkpoint, f'is truncated ({osp.getsize(checkpoint)} bytes, no zip central directory)')


def load_state_dict_from(checkpoint: str) -> Dict[str, torch.Tensor]:
    """The model state dict of a checkpoint file or URL (``state_dict`` / ``model`` entry or the raw dict).

    The ``module.`` prefix of checkpoints saved from a DDP-wrapped model is removed, as mmengine does.
    """
    if '://' not in checkpoint:
        check_checkpoint_file(checkpoint)
    try:
        ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    except Exception as err:  # torch.load raises many types for a damaged file (RuntimeError, UnpicklingError...)
        if 'Unsupported global' in str(err):  # torch's weights-only unpickler refusing a class: not a damaged file
            raise CheckpointReadError(
                f'checkpoint {checkpoint} holds Python objects that torch.load(weights_only=True), torch\'s default, '
                f'refuses ({_unsupported_global(err)}). Checkpoints saved through NexusFlowAtomicCheckpointHook (the '
                f'checkpoint hook of every config here) hold none; this one was written by an earlier version or by '
                f'another checkpoint hook. If you trust the file, run again with the environment variable '
                f'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1.') from err
        raise _unreadable(checkpoint, f'could not be loaded ({type(err).__name__}: {err})') from err
    state = ckpt.get('state_dict', ckpt.get('model', ckpt)) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise TypeError(f'checkpoint {checkpoint} holds {type(ckpt).__name__}, expected a dict with a state dict')
    return {key[len('module.'):] if key.startswith('module.') else key: value for key, value in state.items()}


def compare_state_dicts(model_state: Mapping[str, torch.Tensor],
                        ckpt_state: Mapping[str, torch.Tensor]) -> dict:
    """Keys of the model missing from the checkpoint, unexpected keys, and shape mismatches.

    Returns:
        dict ``missing`` (sorted keys), ``unexpected`` (sorted keys), ``shape_mismatch`` (list of
        ``(key, model_shape, ckpt_shape)``), ``missing_numel`` (elements of the missing and mismatched tensors)
        and ``total_numel`` (elements of the model state).
    """
    missing = sorted(set(model_state) - set(ckpt_state))
    unexpected = sorted(set(ckpt_state) - set(model_state))
    mismatch: List[Tuple[str, tuple, tuple]] = [
        (key, tuple(model_state[key].shape), tuple(ckpt_state[key].shape))
        for key in sorted(set(model_state) & set(ckpt_state))
        if tuple(model_state[key].shape) != tuple(getattr(ckpt_state[key], 'shape', ()))]
    unset = missing + [key for key, _, _ in mismatch]
    return dict(missing=missing, unexpected=unexpected, shape_mismatch=mismatch,
                missing_numel=sum(model_state[key].numel() for key in unset),
                total_numel=sum(value.numel() for value in model_state.values()))


def _by_module(keys: List[str], depth: int = 2, max_groups: int = 6) -> str:
    """``'a.b (n), c.d (m), ... +k more'``: key counts grouped by their first ``depth`` name components."""
    groups = Counter('.'.join(key.split('.')[:depth]) for key in keys)
    shown = ', '.join(f'{name} ({count})' for name, count in sorted(groups.items(), key=lambda g: (-g[1], g[0]))
                      [:max_groups])
    return shown + (f', +{len(groups) - max_groups} more modules' if len(groups) > max_groups else '')


def format_report(report: dict, checkpoint: str) -> str:
    """A few lines summarising ``compare_state_dicts`` output for the log."""
    ratio = report['missing_numel'] / max(report['total_numel'], 1)
    lines = [f'checkpoint {checkpoint} vs model: {len(report["missing"])} missing, {len(report["unexpected"])} '
             f'unexpected, {len(report["shape_mismatch"])} shape-mismatched tensors; '
             f'{100 * ratio:.1f}% of the model state ({report["missing_numel"]} of {report["total_numel"]} values) '
             f'is not set by the checkpoint']
    if report['missing']:
        lines.append(f'  missing in: {_by_module(report["missing"])}')
    if report['unexpected']:
        lines.append(f'  unexpected in: {_by_module(report["unexpected"])}')
    for key, model_shape, ckpt_shape in report['shape_mismatch'][:5]:
        lines.append(f'  shape mismatch {key}: model {model_shape} vs checkpoint {ckpt_shape}')
    return '\n'.join(lines)


def check_checkpoint(model: torch.nn.Module, checkpoint: str, max_missing_ratio: float = 0.1) -> dict:
    """Log a concise key report and fail when the checkpoint does not fit the model.

    Args:
        model: the model built from the config (unwrapped, not DDP).
        checkpoint: path or URL of the checkpoint.
        max_missing_ratio: largest accepted fraction (in [0, 1], by element count) of the model state that the
            checkpoint leaves unset (missing or shape-mismatched tensors).

    Returns:
        the ``compare_state_dicts`` report.

    Raises:
        FileNotFoundError: the checkpoint file does not exist.
        CheckpointMismatchError: any shape mismatch, or more than ``max_missing_ratio`` of the model unset.
    """
    if not 0.0 <= max_missing_ratio <= 1.0:
        raise ValueError(f'max_missing_ratio must lie in [0, 1], got {max_missing_ratio}')
    report = compare_state_dicts(model.state_dict(), load_state_dict_from(checkpoint))
    text = format_report(report, checkpoint)
    print_log(text, logger='current')
    ratio = report['missing_numel'] / max(report['total_numel'], 1)
    if report['shape_mismatch'] or ratio > max_missing_ratio:
        raise CheckpointMismatchError(
            f'checkpoint does not match config: {text}\nThe limit is {100 * max_missing_ratio:.0f}% unset and no '
            f'shape mismatch; check that the checkpoint was trained with this config (or convert it), or raise '
            f'--max-missing-ratio for a deliberate partial load.')
    return report
