r"""Latent alignment objectives of NexusFlow for ``N >= 2`` tasks.

Per sample ``b`` with task latents ``z_1 .. z_N`` (each ``[D]``):

- pairwise (Eq. 5 of the 2-task paper, Eq. 3 of the N-task paper): ``L_b = sum_{i<j} ||z_i - z_j||^2``;
- center (Eq. 4 of the N-task paper): ``L_b = sum_i ||z_i - zbar||^2`` with ``zbar = mean_i z_i``.

They are proportional, ``pairwise = N * center``. Proof: with ``u_i = z_i - zbar`` (so ``sum_i u_i = 0``),
``sum_{i<j} ||z_i - z_j||^2 = 1/2 sum_{i,j} ||u_i - u_j||^2
= 1/2 sum_{i,j} (||u_i||^2 + ||u_j||^2 - 2 <u_i, u_j>) = N sum_i ||u_i||^2 - ||sum_i u_i||^2 = N sum_i ||u_i||^2``.
So for two tasks the center loss is half the paper's ``||z_map - z_track||^2``; the two modes differ only by the
constant factor ``N`` (a learning-rate-like scale), and ``center`` costs ``O(N)`` instead of ``O(N^2)``.

The per-sample values are reduced over the batch as in mmdet's ``weight_reduce_loss``: ``'mean'`` is
``sum_b w_b L_b / B`` (or ``/ avg_factor``), ``'sum'`` is ``sum_b w_b L_b``, ``'none'`` returns ``w_b L_b``.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor

ALIGN_MODES = ('pairwise', 'center')
REDUCTIONS = ('none', 'mean', 'sum')


def stack_latents(latents: Sequence[Tensor]) -> Tensor:
    """Check and stack ``N >= 2`` latents ``[B, D]`` into one float ``[N, B, D]`` tensor.

    The result is at least float32 so that AMP never sums squared distances in half precision.
    """
    if len(latents) < 2:
        raise ValueError(f'alignment needs latents of at least 2 tasks, got {len(latents)}')
    shapes = [tuple(z.shape) for z in latents]
    if any(len(s) != 2 for s in shapes) or len(set(shapes)) != 1:
        raise ValueError(f'every latent must be [B, D] with the same B and D, got shapes {shapes}')
    stacked = torch.stack(list(latents))
    return stacked.float() if stacked.dtype in (torch.float16, torch.bfloat16) else stacked


def pairwise_align(latents: Sequence[Tensor]) -> Tensor:
    """Per-sample pairwise loss ``sum_{i<j} ||z_i - z_j||^2``.

    Args:
        latents (Sequence[Tensor]): ``N >= 2`` tensors ``[B, D]``, one per task (same sample order).

    Returns:
        Tensor: ``[B]`` float, ``>= 0``.
    """
    z = stack_latents(latents)
    rows, cols = torch.triu_indices(len(z), len(z), offset=1, device=z.device)
    return (z[rows] - z[cols]).pow(2).sum(dim=-1).sum(dim=0)


def center_align(latents: Sequence[Tensor]) -> Tensor:
    """Per-sample center loss ``sum_i ||z_i - mean_j z_j||^2``.

    Args:
        latents (Sequence[Tensor]): ``N >= 2`` tensors ``[B, D]``, one per task (same sample order).

    Returns:
        Tensor: ``[B]`` float, ``>= 0``; exactly zero for a sample where all latents are equal.
    """
    z = stack_latents(latents)
    # offsets from z_1 first: z_i - zbar = (z_i - z_1) - mean_j (z_j - z_1) is exactly 0 when all agree
    rel = z - z[:1]
    return (rel - rel.mean(dim=0, keepdim=True)).pow(2).sum(dim=-1).sum(dim=0)


def reduce_per_sample(per_sample: Tensor, reduction: str = 'mean', weight: Optional[Tensor] = None,
                      avg_factor: Optional[float] = None) -> Tensor:
    """Weight and reduce a ``[B]`` per-sample loss (mmdet ``weight_reduce_loss`` semantics).

    Args:
        per_sample (Tensor): ``[B]`` float.
        reduction (str): ``'none'`` (``[B]``), ``'mean'`` (scalar, divided by ``B`` or ``avg_factor``) or
            ``'sum'`` (scalar).
        weight (Tensor, optional): ``[B]`` non-negative per-sample weights.
        avg_factor (float, optional): denominator of ``'mean'`` instead of ``B``.

    Returns:
        Tensor: the reduced loss.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
    if weight is not None:
        if tuple(weight.shape) != tuple(per_sample.shape):
            raise ValueError(f'weight must have the per-sample shape {tuple(per_sample.shape)}, '
                             f'got {tuple(weight.shape)}')
        per_sample = per_sample * weight.to(per_sample.dtype)
    if reduction == 'none':
        return per_sample
    if reduction == 'sum':
        return per_sample.sum()
    return per_sample.sum() / (per_sample.numel() if avg_factor is None else avg_factor)


def align_loss(latents: Sequence[Tensor], mode: str = 'center', reduction: str = 'mean',
               weight: Optional[Tensor] = None, avg_factor: Optional[float] = None) -> Tensor:
    """Alignment loss of ``N >= 2`` task latents (see the module docstring for the formulas).

    Args:
        latents (Sequence[Tensor]): ``N`` tensors ``[B, D]``, one per task, row ``b`` = sample ``b`` in all.
        mode (str): ``'center'`` or ``'pairwise'``.
        reduction (str): ``'mean'`` (over the batch), ``'sum'`` or ``'none'``.
        weight (Tensor, optional): ``[B]`` per-sample weights.
        avg_factor (float, optional): denominator of ``'mean'`` instead of ``B``.

    Returns:
        Tensor: scalar (``[B]`` for ``'none'``) float, in squared latent units.
    """
    if mode not in ALIGN_MODES:
        raise ValueError(f'mode must be one of {ALIGN_MODES}, got {mode!r}')
    per_sample = pairwise_align(latents) if mode == 'pairwise' else center_align(latents)
    return reduce_per_sample(per_sample, reduction, weight, avg_factor)


def mean_pair_distance(latents: Sequence[Tensor]) -> Tensor:
    """Logging value: the Euclidean distance ``||z_i - z_j||`` averaged over task pairs and samples, scalar."""
    z = stack_latents(latents)
    rows, cols = torch.triu_indices(len(z), len(z), offset=1, device=z.device)
    return (z[rows] - z[cols]).norm(dim=-1).mean()
