"""``build_mlp``: the ``Linear -> activation -> ... -> Linear`` stack used across the plugin (regression branches of
the track and map heads, NexusFlow's coupling sub-networks, MLP aggregators and ``w/o inv`` blocks).

Why not mmdet's ``MLP`` (``mmdet.models.layers.transformer.utils``): it fixes ReLU and one hidden width, cannot start
at zero output (the couplings start as the identity map), and names its layers ``layers.N`` with the activations
applied functionally, while the official UniAD / BEVFormer checkpoints that ``tools/model_converters`` load store
these branches as ``nn.Sequential`` indices (``0, 2, 4`` linear, ``1, 3`` activation), which this stack keeps."""
from typing import List, Sequence

from mmcv.cnn import build_activation_layer
from torch import nn


def build_mlp(in_dim: int, hidden_dims: Sequence[int], out_dim: int, act_cfg: dict,
              zero_last: bool = False) -> nn.Sequential:
    """``Linear -> act -> ... -> Linear`` with ``len(hidden_dims) + 1`` linear layers.

    Args:
        in_dim (int): input width.
        hidden_dims (Sequence[int]): widths of the hidden layers (may be empty: a single linear layer).
        out_dim (int): output width.
        act_cfg (dict): mmcv activation config placed after every hidden linear layer.
        zero_last (bool): zero the weight and bias of the last linear layer (the MLP then outputs zeros).

    Returns:
        nn.Sequential: the MLP, ``[*, in_dim] -> [*, out_dim]``.
    """
    layers: List[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        layers += [nn.Linear(width, int(hidden)), build_activation_layer(act_cfg)]
        width = int(hidden)
    last = nn.Linear(width, out_dim)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)
