"""RealNVP affine couplings for the NexusFlow surrogate, and the plain-MLP stack of the ``w/o inv`` ablation.

Follows RealNVP (Dinh et al., 2017) with the stability details of FrEIA's ``RNVPCouplingBlock``: the scale is
soft-clamped (``s = clamp * tanh(raw / clamp)``; FrEIA uses ``atan``), ``s`` and ``t`` are small MLPs without batch
norm (the inverse must not depend on batch statistics), and their last layers start at zero so that every coupling
is the identity at initialisation.

What changed: instead of physically permuting the vector between layers, each coupling works on two fixed index
sets of the *unpermuted* vector (``cond`` passes through and conditions ``s, t``; ``trans`` is transformed), so a
zero-initialised stack is exactly the identity, not a permutation. The index sets come in pairs: layer ``2m`` draws
a seeded random half (layer 0 uses the natural split ``[0, D/2) | [D/2, D)``, which makes a one-layer ``'half'``
stack exactly Eq. (1) of the 2-task paper), layer ``2m + 1`` swaps the roles, so every dimension is transformed at
least once in every pair of layers. The index sets are persistent buffers: a checkpoint carries its own partition.
"""
from typing import List, Sequence, Tuple

import torch
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ..layers import build_mlp, variance_preserving_init_

OUTPUT_MODES = ('full', 'half')


def coupling_partitions(dim: int, num_layers: int, seed: int) -> List[Tuple[Tensor, Tensor]]:
    """The ``(cond, trans)`` index sets of each coupling layer (see the module docstring).

    Args:
        dim (int): even vector width ``D``.
        num_layers (int): number of couplings ``K``.
        seed (int): seed of the random halves of layers ``2, 4, ...`` (a private ``torch.Generator``; the global
            RNG is untouched).

    Returns:
        list[tuple[LongTensor, LongTensor]]: per layer, sorted ``cond`` and ``trans`` indices, ``D / 2`` each.
    """
    half = dim // 2
    generator = torch.Generator().manual_seed(seed)
    partitions = []
    for k in range(num_layers):
        if k % 2 == 1:
            cond, trans = partitions[-1][1], partitions[-1][0]
        elif k == 0:
            cond, trans = torch.arange(half), torch.arange(half, dim)
        else:
            perm = torch.randperm(dim, generator=generator)
            cond, trans = perm[:half].sort().values, perm[half:].sort().values
        partitions.append((cond, trans))
    return partitions


class AffineCoupling(BaseModule):
    """One affine coupling ``y[trans] = x[trans] * exp(s(x[cond])) + t(x[cond])``, ``y[cond] = x[cond]``.

    Args:
        cond_index (LongTensor): ``[D / 2]`` indices of the conditioning half.
        trans_index (LongTensor): ``[D / 2]`` indices of the transformed half (disjoint from ``cond_index``).
        hidden_dims (Sequence[int]): hidden widths of the ``s`` and ``t`` MLPs.
        clamp (float): soft clamp of the log-scale, ``s`` lies in ``(-clamp, clamp)``.
        act_cfg (dict): activation of the ``s`` and ``t`` MLPs.
    """

    def __init__(self, cond_index: Tensor, trans_index: Tensor, hidden_dims: Sequence[int] = (256, ),
                 clamp: float = 2.0, act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        self.clamp = float(clamp)
        self.register_buffer('cond_index', cond_index.clone())
        self.register_buffer('trans_index', trans_index.clone())
        self.register_buffer('merge_order', torch.argsort(torch.cat([cond_index, trans_index])))
        self.scale_net = build_mlp(len(cond_index), hidden_dims, len(trans_index), act_cfg, zero_last=True)
        self.shift_net = build_mlp(len(cond_index), hidden_dims, len(trans_index), act_cfg, zero_last=True)

    def _scale_shift(self, x_cond: Tensor) -> Tuple[Tensor, Tensor]:
        """Soft-clamped log-scale and shift, each ``[B, D / 2]``, from the conditioning half ``[B, D / 2]``."""
        raw = self.scale_net(x_cond)
        return self.clamp * torch.tanh(raw / self.clamp), self.shift_net(x_cond)

    def _merge(self, part_cond: Tensor, part_trans: Tensor) -> Tensor:
        """Put the two halves ``[B, D / 2]`` back at their indices: ``[B, D]``."""
        return torch.cat([part_cond, part_trans], dim=1)[:, self.merge_order]

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Apply the coupling.

        Args:
            x (Tensor): ``[B, D]`` float embeddings (any range).

        Returns:
            tuple[Tensor, Tensor]: ``y`` ``[B, D]`` and the log-determinant of the Jacobian ``dy/dx`` per sample,
            ``[B]`` (``= sum(s)``, in nats).
        """
        x_cond, x_trans = x[:, self.cond_index], x[:, self.trans_index]
        scale, shift = self._scale_shift(x_cond)
        return self._merge(x_cond, x_trans * torch.exp(scale) + shift), scale.sum(dim=1)

    def transformed_half(self, x: Tensor) -> Tensor:
        """Only ``y[trans]`` ``[B, D / 2]`` of :meth:`forward` (Eq. 1 of the 2-task paper for the first layer)."""
        x_cond = x[:, self.cond_index]
        scale, shift = self._scale_shift(x_cond)
        return x[:, self.trans_index] * torch.exp(scale) + shift

    def inverse(self, y: Tensor) -> Tensor:
        """Exact inverse: ``x[trans] = (y[trans] - t(y[cond])) * exp(-s(y[cond]))``; ``[B, D] -> [B, D]``."""
        y_cond, y_trans = y[:, self.cond_index], y[:, self.trans_index]
        scale, shift = self._scale_shift(y_cond)
        return self._merge(y_cond, (y_trans - shift) * torch.exp(-scale))


def check_flow_args(dim: int, num_layers: int, output: str) -> None:
    """Raise ``ValueError`` for an odd/too small ``dim``, ``num_layers < 1`` or an unknown ``output``."""
    if dim < 2 or dim % 2:
        raise ValueError(f'dim must be an even number >= 2 (two equal partitions), got {dim}')
    if num_layers < 1:
        raise ValueError(f'num_layers must be >= 1, got {num_layers}')
    if output not in OUTPUT_MODES:
        raise ValueError(f'output must be one of {OUTPUT_MODES}, got {output!r}')


def check_vectors(x: Tensor, dim: int, owner: str) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[B, dim]``."""
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f'{owner} expects [B, {dim}] inputs, got shape {tuple(x.shape)}')


@MODELS.register_module('NexusFlowAffineCouplingStack')
class AffineCouplingStack(BaseModule):
    """``num_layers`` RealNVP affine couplings: the invertible map ``C`` of NexusFlow, ``f -> z``.

    ``output='full'`` is the bijection ``R^D -> R^D``: :meth:`inverse` and :meth:`log_det` are exact.
    ``output='half'`` is the 2-task paper's "second partition only": the stack runs as in ``'full'`` and returns
    only the transformed half of the last coupling, ``z = f2 * exp(s(f1)) + t(f1)`` with ``(f1, f2)`` the
    conditioning and transformed halves of the last coupling's input (``D / 2`` dims). That map drops ``f1`` and is
    not invertible from ``z`` alone, so :meth:`inverse` and :meth:`log_det` raise ``ValueError`` in that mode.

    Args:
        dim (int): even embedding width ``D``.
        num_layers (int): number of couplings ``K`` (the papers use 6 on nuScenes, 4 on NYUv2).
        hidden_dims (Sequence[int]): hidden widths of every ``s`` and ``t`` MLP.
        clamp (float): soft clamp of the log-scale of each coupling.
        output (str): ``'full'`` or ``'half'``.
        seed (int): seed of the fixed random partitions between layers.
        act_cfg (dict): activation of the ``s`` and ``t`` MLPs.
        init_cfg (dict, optional): mmengine init config (overriding it breaks the identity initialisation).
    """

    def __init__(self, dim: int, num_layers: int = 6, hidden_dims: Sequence[int] = (256, ), clamp: float = 2.0,
                 output: str = 'full', seed: int = 0, act_cfg: dict = dict(type='ReLU'),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_flow_args(dim, num_layers, output)
        if clamp <= 0:
            raise ValueError(f'clamp must be > 0, got {clamp}')
        self.dim = dim
        self.output = output
        self.layers = nn.ModuleList(
            AffineCoupling(cond, trans, hidden_dims, clamp, act_cfg)
            for cond, trans in coupling_partitions(dim, num_layers, seed))

    @property
    def out_dim(self) -> int:
        """Width of ``z``: ``D`` for ``'full'``, ``D / 2`` for ``'half'``."""
        return self.dim if self.output == 'full' else self.dim // 2

    def forward(self, x: Tensor, return_log_det: bool = False):
        """Map embeddings to latents.

        Args:
            x (Tensor): ``[B, D]`` float embeddings ``f`` (any range).
            return_log_det (bool): also return ``log|det dz/dx|`` ``[B]`` (``'full'`` only).

        Returns:
            Tensor | tuple[Tensor, Tensor]: ``z`` ``[B, out_dim]``, and the log-determinant if requested.
        """
        check_vectors(x, self.dim, type(self).__name__)
        if self.output == 'half':
            if return_log_det:
                raise ValueError("return_log_det needs output='full': the 'half' map R^D -> R^(D/2) has no "
                                 'square Jacobian')
            for layer in self.layers[:-1]:
                x = layer(x)[0]
            return self.layers[-1].transformed_half(x)
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, layer_log_det = layer(x)
            log_det = log_det + layer_log_det
        return (x, log_det) if return_log_det else x

    def inverse(self, z: Tensor) -> Tensor:
        """Closed-form inverse of the ``'full'`` stack: ``[B, D] -> [B, D]``, ``inverse(forward(x)) == x``."""
        if self.output != 'full':
            raise ValueError("inverse() needs output='full': the 'half' output drops the conditioning half f1 of "
                             'the last coupling, so z alone does not determine the embedding')
        check_vectors(z, self.dim, type(self).__name__)
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def log_det(self, x: Tensor) -> Tensor:
        """``log|det dz/dx|`` per sample, ``[B]`` float, for ``[B, D]`` inputs (``'full'`` only)."""
        return self.forward(x, return_log_det=True)[1]

    def volume_log_det(self, x: Tensor) -> Tensor:
        """``log|det|`` of the ``K`` couplings as the bijection ``R^D -> R^D``, per sample ``[B]``, in both output
        modes (for ``'half'``: the volume change before the conditioning half of the last coupling is dropped).
        A diagnostic: strongly negative values mean the stack shrinks its input."""
        check_vectors(x, self.dim, type(self).__name__)
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, layer_log_det = layer(x)
            log_det = log_det + layer_log_det
        return log_det


@MODELS.register_module('NexusFlowMLPStack')
class MLPStack(BaseModule):
    """The ``w/o inv`` ablation: a plain, non-invertible MLP in place of :class:`AffineCouplingStack`.

    It has the same depth (``num_layers`` blocks, each an MLP with ``hidden_dims``, activations between blocks)
    and the same output width (``D`` for ``'full'``, ``D / 2`` for ``'half'``). It is He-initialised
    (:func:`variance_preserving_init_`): a zero start, or PyTorch's default initialisation over this depth, would map
    every input to (nearly) the same point, i.e. start collapsed.

    Args:
        dim (int): even embedding width ``D``.
        num_layers (int): number of blocks.
        hidden_dims (Sequence[int]): hidden widths of every block.
        output (str): ``'full'`` or ``'half'``.
        act_cfg (dict): activation inside and between the blocks.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, dim: int, num_layers: int = 6, hidden_dims: Sequence[int] = (256, ), output: str = 'full',
                 act_cfg: dict = dict(type='ReLU'), init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_flow_args(dim, num_layers, output)
        self.dim = dim
        self.output = output
        blocks: List[nn.Module] = []
        for k in range(num_layers):
            last = k == num_layers - 1
            blocks.append(build_mlp(dim, hidden_dims, self.out_dim if last else dim, act_cfg))
            if not last:
                blocks.append(build_activation_layer(act_cfg))
        self.blocks = variance_preserving_init_(nn.Sequential(*blocks))

    @property
    def out_dim(self) -> int:
        """Width of ``z``: ``D`` for ``'full'``, ``D / 2`` for ``'half'``."""
        return self.dim if self.output == 'full' else self.dim // 2

    def forward(self, x: Tensor) -> Tensor:
        """``[B, D]`` float embeddings -> ``[B, out_dim]`` latents."""
        check_vectors(x, self.dim, type(self).__name__)
        return self.blocks(x)
