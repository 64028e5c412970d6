"""Freeze named sub-modules at model build time (``requires_grad=False``), the DDP-safe place to do it.

DDP registers the parameters that require gradients when it wraps the model; freezing them before that (e.g. through
a model's ``frozen_modules`` option at the end of its ``__init__``) keeps DDP working without
``find_unused_parameters``. ``engine/freeze_hook.py`` builds the training hook (checks, logging, frozen norm layers
in eval mode) on these functions.
"""
import difflib
from typing import Dict, Sequence

from torch import nn


def under_prefix(name: str, prefix: str) -> bool:
    """Whether dotted ``name`` is ``prefix`` itself or lies below it (``'a.b'`` is under ``'a'``, ``'ab'`` is not)."""
    return name == prefix or name.startswith(prefix + '.')


def check_prefixes(model: nn.Module, prefixes: Sequence[str]) -> None:
    """Raise ``KeyError`` (with the closest module names) for a prefix that matches no module of ``model``."""
    names = [name for name, _ in model.named_modules() if name]
    for prefix in prefixes:
        if not any(under_prefix(name, prefix) for name in names):
            close = difflib.get_close_matches(prefix, names, n=5, cutoff=0.5)
            raise KeyError(f'module prefix {prefix!r} matches no module of {type(model).__name__}; closest names: '
                           f'{close or "none"} (prefixes are dotted names from model.named_modules())')


def params_under(model: nn.Module, prefixes: Sequence[str]) -> Dict[str, nn.Parameter]:
    """Parameters below any of ``prefixes``, by name, each once, in ``named_parameters`` order."""
    return {name: param for name, param in model.named_parameters()
            if any(under_prefix(name, prefix) for prefix in prefixes)}


def freeze_modules(model: nn.Module, prefixes: Sequence[str]) -> Dict[str, int]:
    """Set ``requires_grad=False`` on every parameter below the dotted ``prefixes`` of ``model``.

    Call it before the model is wrapped in DDP (see the module docstring).

    Args:
        model (nn.Module): the unwrapped model.
        prefixes (Sequence[str]): dotted module names, e.g. ``['img_backbone', 'img_neck', 'bev_encoder']``.

    Returns:
        dict[str, int]: per prefix, the number of parameter elements below it (all frozen now).

    Raises:
        KeyError: a prefix matches no module (the message lists the closest names).
    """
    check_prefixes(model, prefixes)
    for param in params_under(model, prefixes).values():
        param.requires_grad_(False)
    return {prefix: sum(p.numel() for p in params_under(model, [prefix]).values()) for prefix in prefixes}
