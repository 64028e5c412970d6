"""Xavier initialisation helpers shared by the baseline's modules (mmcv's ``xavier_init`` and the DETR-family
"Xavier for every matrix" loop, written once)."""
from torch import nn


def xavier_linear_(layer: nn.Linear) -> None:
    """Xavier-uniform weight and zero bias (mmcv ``xavier_init(distribution='uniform', bias=0)``)."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def xavier_matrices_(module: nn.Module) -> None:
    """Xavier-uniform init of every parameter of ``module`` with two or more dimensions (weight matrices), in
    ``module.parameters()`` order; vectors (biases, norms) keep their values. As UniAD's QIM, memory bank,
    ``SegMaskHead`` and ``SegDeformableTransformer``."""
    for param in module.parameters():
        if param.dim() > 1:
            nn.init.xavier_uniform_(param)
