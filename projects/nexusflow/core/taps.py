"""``TapPlugin``: the base of plug-ins that read a host model's intermediate outputs through forward hooks.

A plug-in names the modules it reads by dotted path (``dict(module='track_head.decoder', kind='queries')``);
:meth:`TapPlugin.attach` registers read-only forward hooks on them, so the host's outputs and autograd graph are
untouched (a hook that returns ``None`` cannot change an output). Each hook keeps the *latest* output of its module
(the track decoder runs once per frame of a clip, history-BEV passes run before the current one: the last call is
the current frame). Stored outputs keep their graph, so a plug-in loss trains the tapped modules; they are dropped
at the start of every forward of the host (a pre-hook on the host) and after :meth:`TapPlugin.loss`, so no graph
outlives its iteration.
"""
import difflib
from typing import Any, Dict, List, Optional

from mmengine.model import BaseModule
from torch import nn
from torch.utils.hooks import RemovableHandle

from .tap_adapters import TapOutput, build_tap_adapter


class _TapRecorder:
    """Forward hook of one tapped module: stores its output in the plug-in (returns ``None``: read-only).

    A small object rather than a closure, so that ``copy.deepcopy(host)`` (e.g. an EMA copy) gives hooks that
    write into the copied plug-in.
    """

    def __init__(self, plugin: 'TapPlugin', path: str) -> None:
        self.plugin = plugin
        self.path = path

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        self.plugin._records[self.path] = output


class _TapReset:
    """Forward pre-hook of the host: forget the previous forward's tap outputs (and their graphs)."""

    def __init__(self, plugin: 'TapPlugin') -> None:
        self.plugin = plugin

    def __call__(self, module: nn.Module, args: Any) -> None:
        self.plugin.clear()


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    """``model.get_submodule(path)`` with a ``KeyError`` that lists the closest module names on a typo."""
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    close = difflib.get_close_matches(path, [name for name in modules if name], n=5, cutoff=0.5)
    raise KeyError(f'no module named {path!r} in {type(model).__name__}; closest names: {close or "none"}. '
                   'Tap paths are dotted names as listed by model.named_modules().')


class TapPlugin(BaseModule):
    """Base plug-in: forward hooks on named modules of a host, latest output per tap, adapters, ``loss()``.

    Args:
        taps (dict[str, dict]): tap name -> spec ``dict(module=<dotted path>, kind=<'bev' | 'feature_map' |
            'queries' | registered adapter>, **adapter kwargs)``. Several taps may read the same module.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, taps: Dict[str, dict], init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(taps, dict) or not taps:
            raise ValueError(f'taps must be a non-empty dict name -> tap spec, got {taps!r}')
        self._tap_paths: Dict[str, str] = {}
        self._adapters = {}
        for name, spec in taps.items():
            self._tap_paths[name], self._adapters[name] = build_tap_adapter(spec)
        self._records: Dict[str, Any] = {}
        self._handles: List[RemovableHandle] = []

    @property
    def tap_names(self) -> List[str]:
        """Tap names in config order."""
        return list(self._tap_paths)

    @property
    def is_attached(self) -> bool:
        """Whether the hooks are registered on a host."""
        return bool(self._handles)

    def attach(self, model: nn.Module) -> None:
        """Register a read-only forward hook on every tapped module of ``model`` and a reset pre-hook on ``model``.

        Args:
            model (nn.Module): the host (e.g. the detector) whose forward is one batch: tap paths are relative to
                it and each call of its forward starts with forgetting the previous outputs.

        Each tap's adapter then sees its module (:meth:`BaseTapAdapter.on_attach`): this is where a plug-in
        declares, at build time, what it needs from a head (``head_tap.py``).

        Raises:
            KeyError: a tap path names no module (the message lists the closest names), or a head tap does not
                offer a requested key.
            TypeError: an adapter cannot read the module it taps.
            RuntimeError: already attached.
        """
        if self.is_attached:
            raise RuntimeError(f'{type(self).__name__} is already attached; call detach() first')
        modules = {path: resolve_module(model, path) for path in dict.fromkeys(self._tap_paths.values())}
        handles = []
        try:
            for name, path in self._tap_paths.items():
                handle = self._adapters[name].on_attach(modules[path])
                if handle is not None:
                    handles.append(handle)
        except Exception:
            for handle in handles:
                handle.remove()
            raise
        handles += [module.register_forward_hook(_TapRecorder(self, path)) for path, module in modules.items()]
        self._handles = handles + [model.register_forward_pre_hook(_TapReset(self))]

    def detach(self) -> None:
        """Remove every hook (and withdraw the adapters' requests) and forget the stored outputs."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.clear()

    def clear(self) -> None:
        """Forget the stored tap outputs (and with them the autograd graphs they hold)."""
        self._records = {}

    def tap(self, name: str) -> TapOutput:
        """The adapted latest output of tap ``name`` (graph kept).

        Raises:
            KeyError: unknown tap name.
            RuntimeError: not attached, or the tapped module did not run since the last reset.
        """
        if name not in self._tap_paths:
            raise KeyError(f'unknown tap {name!r}; taps: {self.tap_names}')
        if not self.is_attached:
            raise RuntimeError(f'{type(self).__name__} is not attached: call attach(model) after building the host')
        path = self._tap_paths[name]
        if path not in self._records:
            raise RuntimeError(f'tap {name!r} (module {path!r}) did not fire during the last forward: the module '
                               'was not run (e.g. its head is disabled for this batch or mode) or it was called '
                               'outside the host forward; fired taps: '
                               f'{[n for n, p in self._tap_paths.items() if p in self._records]}')
        return self._adapters[name](self._records[path])

    def loss(self, data_samples: Any) -> Dict[str, Any]:
        """Plug-in loss dict (``loss*`` keys are summed, others are logged); implemented by subclasses."""
        raise NotImplementedError(f'{type(self).__name__} must implement loss(data_samples)')
