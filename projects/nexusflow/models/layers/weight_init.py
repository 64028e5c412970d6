"""Xavier initialisation helpers shared by the baseline's modules.

``xavier_linear_`` is mmengine's ``xavier_init(distribution='uniform', bias=0)`` under a name that reads as what it
does; ``xavier_matrices_`` is the DETR-family "Xavier for every matrix" loop, which mmengine has no helper for (its
initialisers work per module type, and these loops deliberately cover every parameter of two or more dimensions,
whichever module holds it)."""
from mmengine.model import xavier_init
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
