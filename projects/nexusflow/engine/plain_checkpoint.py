"""Checkpoints that ``torch.load(weights_only=True)`` accepts: the message hub stored as plain data.

torch >= 2.6 loads with ``weights_only=True`` by default, which unpickles tensors, containers and Python scalars only.
An mmengine 0.10.7 checkpoint also holds its message hub: ``HistoryBuffer`` objects (numpy arrays, and the class's
statistics methods, pickled through ``builtins.getattr``) and numpy scalars in the runtime information (``eta``).
Allow-listing those globals would let any such checkpoint call ``getattr`` on load, which defeats the check, so
instead :func:`to_plain` rewrites them as lists and Python numbers when a checkpoint is saved and
:func:`from_plain` rebuilds the ``HistoryBuffer`` objects when it is loaded to resume.
``NexusFlowAtomicCheckpointHook`` calls both (``before_save_checkpoint`` / ``after_load_checkpoint``), so a
checkpoint of this plugin loads in any OpenMMLab tool with torch's default. A run that resumes from it without the
hook keeps its weights, optimizer and schedulers; mmengine skips the plain buffers with a warning (its logged
averages restart).
"""
from typing import Any

import numpy as np
from mmengine.logging import HistoryBuffer

__all__ = ['to_plain', 'from_plain']

_BUFFER_KEYS = frozenset(('log_history', 'count_history', 'max_length'))


def _plain_value(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and lists, recursively."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return type(value)((key, _plain_value(item)) for key, item in value.items())
    if type(value) in (list, tuple):
        return type(value)(_plain_value(item) for item in value)
    return value


def to_plain(checkpoint: dict) -> None:
    """Rewrite, in place, the message hub and ``meta`` of an mmengine checkpoint dict as plain data.

    Each ``HistoryBuffer`` of ``message_hub['log_scalars']`` becomes ``dict(log_history=[...],
    count_history=[...], max_length=N)``; numpy scalars and arrays in ``message_hub['runtime_info']`` and ``meta``
    become Python numbers and lists.
    """
    hub = checkpoint.get('message_hub')
    if isinstance(hub, dict):
        hub['log_scalars'] = type(hub['log_scalars'])(
            (key, dict(log_history=buffer._log_history.tolist(), count_history=buffer._count_history.tolist(),
                       max_length=buffer.max_length) if isinstance(buffer, HistoryBuffer) else buffer)
            for key, buffer in hub['log_scalars'].items())
        hub['runtime_info'] = _plain_value(hub['runtime_info'])
    if 'meta' in checkpoint:
        checkpoint['meta'] = _plain_value(checkpoint['meta'])


def from_plain(checkpoint: dict) -> None:
    """Rebuild, in place, the ``HistoryBuffer`` objects that :func:`to_plain` wrote (others are left as they are)."""
    hub = checkpoint.get('message_hub')
    if not isinstance(hub, dict):
        return
    scalars = hub.get('log_scalars', {})
    for key, value in scalars.items():
        if isinstance(value, dict) and set(value) == _BUFFER_KEYS:
            scalars[key] = HistoryBuffer(value['log_history'], value['count_history'], value['max_length'])
