"""Initialisation helpers: Xavier for the baseline's modules, He for the plug-ins' plain ReLU MLPs.

``xavier_linear_`` is mmengine's ``xavier_init(distribution='uniform', bias=0)`` under a name that reads as what it
does; ``xavier_matrices_`` is the DETR-family "Xavier for every matrix" loop, which mmengine has no helper for (its
initialisers work per module type, and these loops deliberately cover every parameter of two or more dimensions,
whichever module holds it)."""
from mmengine.model import kaiming_init, xavier_init
from torch import nn


def xavier_linear_(layer: nn.Linear) -> None:
    """Xavier-uniform weight and zero bias (mmengine ``xavier_init(distribution='uniform', bias=0)``)."""
    xavier_init(layer, distribution='uniform', bias=0)


def xavier_matrices_(module: nn.Module) -> None:
    """Xavier-uniform init of every parameter of ``module`` with two or more dimensions (weight matrices), in
    ``module.parameters()`` order; vectors (biases, norms) keep their values. As UniAD's QIM, memory bank,
    ``SegMaskHead`` and ``SegDeformableTransformer``."""
    for param in module.parameters():
        if param.dim() > 1:
            nn.init.xavier_uniform_(param)


def variance_preserving_init_(module: nn.Module) -> nn.Module:
    """He-initialise every ``nn.Linear`` of ``module`` (normal, fan-in, ReLU gain, zero bias); returns ``module``.

    PyTorch's default ``Linear`` initialisation divides the activation variance by about 6 per ReLU layer, so a deep
    plain MLP maps all inputs to nearly one point: on the tiny model the ``w/o inv`` stack (6 blocks of 2 linear
    layers) turned embeddings of per-dimension std 8e-3 into latents of std 2e-7, collapsed before the first step.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            kaiming_init(layer, mode='fan_in', nonlinearity='relu', bias=0, distribution='normal')
    return module
