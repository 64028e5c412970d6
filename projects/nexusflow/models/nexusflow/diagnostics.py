"""Collapse diagnostics of NexusFlow's embeddings and latents, and the ``'running'`` latent norm.

Training runs with a few samples per batch (one clip per GPU in UniAD), so a per-dimension standard deviation over
the batch is undefined or noise. :class:`CollapseMonitor` measures it over the taps of the last training batches,
re-encoded with the current parameters (:class:`TapQueue`). :class:`RunningMoments` keeps exponential moving averages
of the per-dimension mean and second moment (bias-corrected as Adam's) of values as they were computed; it serves
the latent norm, whose normaliser must follow the latents step by step.

Why a latent norm: the pairwise / centre loss is zero for any constant latent, and an affine coupling can scale its
transformed half by ``exp(-clamp)`` per layer, so a stack can shrink the latent and win the loss without moving the
task features (measured on the tiny model: latents of norm 0.03 against 4.5-6.7 for the tapped features, align loss
1.56 -> 0.002). :class:`LatentStandardizer` divides the latents of all tasks by the running per-dimension std of
their pooled values (detached, shared by the tasks so that offsets between tasks stay), so scale cannot be traded
for loss; it is the batch-free analogue of a BatchNorm without affine parameters in front of the loss. Measured on
the tiny model it does not stop the collapse (its detached normaliser lags behind the shrinking latents); the
remedy with a gradient is ``spread_floor.py``.
"""
from typing import Dict, Optional

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from ...core.tap_adapters import TapOutput
from .tap_queue import TapQueue


class RunningMoments(nn.Module):
    """EMA of the per-dimension mean and second moment of ``[B, D]`` rows.

    Args:
        dim (int): width ``D``.
        momentum (float): weight of a new batch, in ``(0, 1]``.
    """

    def __init__(self, dim: int, momentum: float = 0.02) -> None:
        super().__init__()
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f'momentum must be in (0, 1], got {momentum}')
        self.momentum = float(momentum)
        self.register_buffer('mean', torch.zeros(dim))
        self.register_buffer('sq_mean', torch.zeros(dim))
        self.register_buffer('weight', torch.zeros(()))  # 1 - (1 - momentum)^t: Adam's bias correction

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Fold ``x`` ``[B, D]`` (any float dtype) into the averages."""
        x = x.detach().float().reshape(-1, self.mean.numel())
        m = self.momentum
        self.mean.mul_(1 - m).add_(x.mean(dim=0), alpha=m)
        self.sq_mean.mul_(1 - m).add_(x.pow(2).mean(dim=0), alpha=m)
        self.weight.mul_(1 - m).add_(m)

    def std(self) -> Tensor:
        """Per-dimension std ``[D]`` (zeros before any update)."""
        w = self.weight.clamp(min=1e-12)
        mean, sq = self.mean / w, self.sq_mean / w
        return (sq - mean.pow(2)).clamp(min=0).sqrt() * (self.weight > 0)

    def centre(self) -> Tensor:
        return self.mean / self.weight.clamp(min=1e-12)


class LatentStandardizer(nn.Module):
    """Divide every task's latent by the running per-dimension std of all tasks' latents (shared, detached).

    Args:
        dim (int): latent width.
        momentum (float): EMA weight of a new batch.
        eps (float): added to the std.
    """

    def __init__(self, dim: int, momentum: float = 0.02, eps: float = 1e-6) -> None:
        super().__init__()
        self.moments = RunningMoments(dim, momentum)
        self.eps = float(eps)

    def forward(self, latents: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """``{task: z [B, D]}`` -> ``{task: z / (std + eps)}``; in training the pooled batch updates the std first."""
        if self.training:
            self.moments.update(torch.cat(list(latents.values())))
        scale = (self.moments.std() + self.eps).detach()
        return {name: z / scale.to(z.dtype) for name, z in latents.items()}


class CollapseMonitor(nn.Module):
    """Per task the per-dimension std of the embedding ``f`` and of the latent ``z`` at the current parameters, and
    a collapse warning.

    Every update pushes the batch's taps into a :class:`TapQueue`; every ``interval`` updates the queue is re-encoded
    (no gradient) with the current aggregator and flow, so the std is the spread of the last ``queue_size`` samples
    under one and the same map (a running average of past embeddings would add the map's drift since then). Between
    two measurements the last one is returned again, so a logger's window mean stays a mean over recent steps; a task
    without a measurement yet (a fresh or resumed monitor: the queue and the last measurement are not checkpointed,
    ``steps`` is) is measured as soon as two samples are queued. The
    reference of a task is its latent std at the first measurement with a full queue; a warning is logged (at most
    every ``warn_interval`` updates) while the latent std is below ``ratio`` times it.

    Args:
        tasks (list[str]): task names.
        ratio (float): collapse threshold, fraction of the reference std.
        queue_size (int): tap outputs (training batches) the std is taken over.
        interval (int): updates between two measurements (1: every update). Re-encoding the queue costs about
            ``queue_size`` forward passes of the aggregator and flow.
        warn_interval (int): updates between two warnings.
    """

    def __init__(self, tasks, ratio: float = 0.1, queue_size: int = 16, interval: int = 10,
                 warn_interval: int = 100) -> None:
        super().__init__()
        if interval < 1:
            raise ValueError(f'the collapse monitor needs interval >= 1, got {interval}')
        self.ratio, self.interval, self.warn_interval = float(ratio), int(interval), int(warn_interval)
        self.queues = {task: TapQueue(queue_size) for task in tasks}
        self._measured: Dict[str, Tensor] = {}
        self._host_steps: Optional[int] = None  # ``steps`` on the host, read once (no device sync per update)
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))
        self.register_buffer('reference', torch.zeros(len(self.queues)))
        self.register_buffer('last_warning', torch.full((), -10 ** 9, dtype=torch.long))

    @torch.no_grad()
    def update(self, taps: Dict[str, TapOutput], latents: Dict[str, Tensor], aggregators: nn.ModuleDict,
               flows: nn.ModuleDict) -> Dict[str, Tensor]:
        """Fold one batch in; return ``{task}_latent_norm`` and, from the first measurement with two samples
        queued on, ``{task}_embed_std`` / ``{task}_latent_std`` scalars (the last measurement's).

        Args:
            taps: ``{task: TapOutput}`` of the current batch.
            latents: ``{task: [B, D]}`` of the current batch.
            aggregators, flows: the plug-in's per-task modules (used without gradient).
        """
        out = {}
        if self._host_steps is None:
            self._host_steps = int(self.steps)
        self.steps += 1
        self._host_steps += 1
        scheduled = (self._host_steps - 1) % self.interval == 0
        for index, (task, queue) in enumerate(self.queues.items()):
            queue.push(taps[task])
            out[f'{task}_latent_norm'] = latents[task].detach().float().norm(dim=-1).mean()
            if (scheduled or f'{task}_latent_std' not in self._measured) and queue.rows() >= 2:
                self._measure(index, task, aggregators[task], flows[task])
        out.update(self._measured)
        return out

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        # what was queued and measured belongs to the parameters before the load
        self._host_steps = None
        self._measured.clear()
        for queue in self.queues.values():
            queue.clear()

    def _measure(self, index: int, task: str, aggregator: nn.Module, flow: nn.Module) -> None:
        queue = self.queues[task]
        f = aggregator(queue.batch()).float()
        latent_std = flow(f).float().var(dim=0).sqrt().mean()
        self._measured[f'{task}_embed_std'] = f.var(dim=0).sqrt().mean()
        self._measured[f'{task}_latent_std'] = latent_std
        if len(queue) == queue.size and float(self.reference[index]) == 0:
            self.reference[index] = latent_std
        self._check(index, task, latent_std)

    def _check(self, index: int, task: str, latent_std: Tensor) -> None:
        reference = float(self.reference[index])
        if reference <= 0 or float(latent_std) >= self.ratio * reference:
            return
        if self._host_steps - int(self.last_warning) < self.warn_interval:
            return
        self.last_warning.fill_(self._host_steps)
        print_log(f'NexusFlow: the {task} latent collapses: its per-dimension std is {float(latent_std):.2e}, '
                  f'{float(latent_std) / reference:.1%} of {reference:.2e} once the first '
                  f'{self.queues[task].size} batches were queued (warning below {self.ratio:.0%}). The alignment '
                  'loss is being won by shrinking the latent; consider spread_floor=dict(ratio=0.5) (a running '
                  'latent norm does not stop it).', logger='current', level=30)
