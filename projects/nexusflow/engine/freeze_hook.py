"""Freeze named sub-modules for phase-2 fine-tuning (the 2-task paper freezes the BEV encoder, plus backbone/neck).

Where the freeze has to happen under DDP: ``DistributedDataParallel`` registers, when it is constructed, every
parameter that has ``requires_grad=True`` and then waits each iteration for a gradient of each of them. A parameter
frozen *after* wrapping never gets one, so the next iteration fails with "Expected to have finished reduction in
the prior iteration ..." unless the wrapper was built with ``find_unused_parameters=True`` (which costs a traversal
of the autograd graph every iteration). Parameters that are already frozen when DDP is built are simply not
registered and need nothing. The mmengine ``Runner`` wraps the model in its constructor, before any hook runs
(``before_run`` and ``before_train`` included). Hence:

- DDP-safe: freeze at model build time with :func:`freeze_modules` (e.g. from a model's ``frozen_modules``
  option at the end of its ``__init__``); :class:`FreezeModulesHook` then finds them frozen, checks, logs, and keeps
  their norm layers in eval mode.
- Single process, or DDP with ``find_unused_parameters=True``: the hook alone is enough.
- DDP with ``find_unused_parameters=False`` and parameters still trainable at wrap time: the hook raises a
  ``RuntimeError`` that names both remedies instead of letting DDP hang or fail later.

Frozen parameters keep ``grad=None``; PyTorch optimisers (weight decay included) skip them, so they stay
bit-identical. Frozen norm layers are put in eval mode (BN running statistics stop updating) before every
iteration, because the train loop calls ``model.train()``, and by a forward pre-hook on each of them, because a
model may call ``train()`` inside its forward (e.g. after an eval-mode history-BEV pass).
"""
from typing import List, Sequence

from mmcv.cnn.bricks.norm import is_norm
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.hooks import RemovableHandle

from mmdet3d.registry import HOOKS
from ..core.freeze import check_prefixes, freeze_modules, params_under, under_prefix


def norm_layers_under(model: nn.Module, prefixes: Sequence[str]) -> List[nn.Module]:
    """BN (incl. SyncBN), IN, GN and LN layers below ``prefixes``, in ``named_modules`` order."""
    return [module for name, module in model.named_modules()
            if is_norm(module) and any(under_prefix(name, prefix) for prefix in prefixes)]


def _keep_eval(module: nn.Module, args) -> None:
    """Forward pre-hook of a frozen norm layer: run it in eval mode whatever ``train()`` calls happened before."""
    if module.training:
        module.train(False)


@HOOKS.register_module('NexusFlowFreezeModulesHook')
class FreezeModulesHook(Hook):
    """Freeze named sub-modules before training and keep their norm layers in eval mode.

    Args:
        modules (Sequence[str]): dotted module-name prefixes to freeze.
        norm_eval (bool): keep the norm layers below the prefixes in eval mode during training.
    """

    priority = 'VERY_HIGH'

    def __init__(self, modules: Sequence[str] = ('img_backbone', 'img_neck', 'bev_encoder'),
                 norm_eval: bool = True) -> None:
        if isinstance(modules, str) or not modules:
            raise TypeError(f'modules must be a non-empty list of dotted names, got {modules!r}')
        self.modules = list(modules)
        self.norm_eval = norm_eval
        self._norms: List[nn.Module] = []
        self._guards: List[RemovableHandle] = []

    def before_train(self, runner) -> None:
        """Freeze, check DDP safety, put the frozen norm layers in eval mode and log the counts."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        check_prefixes(model, self.modules)
        newly_frozen = [name for name, p in params_under(model, self.modules).items() if p.requires_grad]
        self._check_ddp(runner.model, newly_frozen)
        counts = freeze_modules(model, self.modules)
        if self.norm_eval:
            self._norms = norm_layers_under(model, self.modules)
            self._guards = [norm.register_forward_pre_hook(_keep_eval) for norm in self._norms]
            self._set_eval()
        frozen = params_under(model, self.modules)
        total = sum(p.numel() for p in frozen.values())
        runner.logger.info(f'FreezeModulesHook: {total} parameters frozen in {len(frozen)} tensors '
                           f'({len(newly_frozen)} frozen by this hook, {len(frozen) - len(newly_frozen)} at build '
                           f'time); per prefix {counts}; {len(self._norms)} norm layers kept in eval mode')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Undo the train loop's ``model.train()`` on the frozen norm layers."""
        self._set_eval()

    def after_train(self, runner) -> None:
        """Remove the eval-mode guards from the norm layers."""
        for guard in self._guards:
            guard.remove()
        self._guards = []

    def _set_eval(self) -> None:
        for norm in self._norms:
            norm.train(False)

    def _check_ddp(self, wrapper: nn.Module, newly_frozen: List[str]) -> None:
        """``RuntimeError`` if DDP registered parameters this hook is about to freeze and cannot skip them."""
        if not (isinstance(wrapper, DistributedDataParallel) and newly_frozen
                and not wrapper.find_unused_parameters):
            return
        raise RuntimeError(
            f'FreezeModulesHook would freeze {len(newly_frozen)} parameter tensors (e.g. {newly_frozen[:3]}) that '
            'DistributedDataParallel(find_unused_parameters=False) registered when the Runner wrapped the model; '
            'DDP would then wait for their gradients forever. Freeze them before wrapping (call '
            'projects.nexusflow.core.freeze_modules on the model at build time, e.g. through its frozen_modules '
            "option), or set model_wrapper_cfg=dict(type='MMDistributedDataParallel', find_unused_parameters=True).")
