"""The head-tap contract: a task head's ``pred_tap`` and the adapter a plug-in reads it with.

A task head owns a :class:`PredictionTap` named ``pred_tap`` and calls it on a dict of its decoded predictions. The
tap is an identity, so a plug-in's forward hook reads the dict without changing any output or graph. The head
declares the keys it always passes (``fields``) and the keys it computes only on request (``on_request``, e.g. a
field that costs an extra decoder pass). A plug-in declares the keys it reads when it is attached to the host, at
model build time: :meth:`TapPlugin.attach <projects.nexusflow.core.taps.TapPlugin.attach>` hands every tapped module
to its adapter, and :class:`PredictionTapAdapter` calls :meth:`PredictionTap.request` with its ``keys``. The head
asks :meth:`PredictionTap.requested` before computing an on-request key.
"""
from collections import OrderedDict
from typing import Optional, Sequence, Tuple

from torch import nn
from torch.utils.hooks import RemovableHandle

from mmdet3d.registry import TASK_UTILS
from .tap_adapters import BaseTapAdapter


class PredictionTap(nn.Identity):
    """A head's tap point for plug-ins: an identity called on ``dict(<key>=<prediction>, ...)``.

    Args:
        fields (Sequence[str]): keys of every call.
        on_request (Sequence[str]): keys the head adds only while a plug-in requested them.
    """

    def __init__(self, fields: Sequence[str] = (), on_request: Sequence[str] = ()) -> None:
        super().__init__()
        self.fields = tuple(fields)
        self.on_request = tuple(on_request)
        self._requests: 'OrderedDict[int, Tuple[str, ...]]' = OrderedDict()  # weak-referenceable, as handles need

    def request(self, keys: Sequence[str]) -> RemovableHandle:
        """Declare that a reader needs ``keys``; ``handle.remove()`` withdraws the request.

        Raises:
            KeyError: a key the head never passes (the message lists the keys it offers).
        """
        unknown = [key for key in keys if key not in self.fields + self.on_request]
        if unknown:
            raise KeyError(f'the head tap offers no {unknown}: it always passes {list(self.fields)} and on request '
                           f'{list(self.on_request)}')
        handle = RemovableHandle(self._requests)
        self._requests[handle.id] = tuple(keys)
        return handle

    def requested(self, key: str) -> bool:
        """Whether a reader requested ``key`` (the head computes an on-request key only then)."""
        return any(key in keys for keys in self._requests.values())

    def extra_repr(self) -> str:
        return f'fields={self.fields}, on_request={self.on_request}'


@TASK_UTILS.register_module('NexusFlowPredictionTapAdapter')
class PredictionTapAdapter(BaseTapAdapter):
    """Tap kind for a head's ``pred_tap``: requests ``keys`` from the head, checks the dict holds them, returns it.

    Args:
        keys (Sequence[str]): keys the dict must hold.
        index (int, optional): element of a tuple/list output to adapt.
    """

    def __init__(self, keys: Sequence[str], index: Optional[int] = None) -> None:
        super().__init__(index)
        self.keys = tuple(keys)

    def on_attach(self, module: nn.Module) -> RemovableHandle:
        """Request ``keys`` from the tapped :class:`PredictionTap`.

        Raises:
            TypeError: ``module`` is not a head's ``PredictionTap``.
        """
        if not isinstance(module, PredictionTap):
            raise TypeError(f'{type(self).__name__} reads a head\'s pred_tap (a PredictionTap), got a '
                            f'{type(module).__name__}; tap "<head>.pred_tap"')
        return module.request(self.keys)

    def adapt(self, raw) -> dict:
        """The prediction dict itself (graph kept)."""
        if not isinstance(raw, dict):
            raise TypeError(f'{type(self).__name__} expects the dict a head passes to its pred_tap, got '
                            f'{type(raw).__name__}; tap "<head>.pred_tap"')
        missing = [key for key in self.keys if key not in raw]
        if missing:
            raise KeyError(f'prediction dict lacks {missing}; it has {sorted(raw)}')
        return raw
