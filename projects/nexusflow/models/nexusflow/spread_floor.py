"""``SpreadFloor``: a variance hinge that keeps NexusFlow's embeddings and latents from shrinking (an option).

Measured on the tiny model, the pairwise / centre loss is won by shrinking: the couplings contract (mean
``log|det|`` -1.7 -> -104 in ~70 iterations) and then the aggregators shrink their embeddings, until the latents
have a norm of a few hundredths and the task features receive almost no alignment gradient. VICReg (Bardes et al.,
ICLR 2022) prevents such collapse with a hinge on the per-dimension std over the batch, ``mean_d relu(floor -
std_d)``. UniAD trains one clip per GPU, so there is no batch to take a std over; the floor keeps the taps of the
last ``queue_size`` samples (detached tap outputs) and runs them through the *current* aggregator and flow of each
task with every step. The std is then that of embeddings and latents of one and the same map: statistics of stored
embeddings or latents would carry the drift of the map since they were computed, and a hinge on them is met by
that drift while the spread collapses (measured on a toy at one sample per step: two such floors failed that way).
The gradient reaches the aggregator and the flow through every row and the host through the current sample.
"""
from typing import Dict

import torch
from torch import Tensor, nn

from ...core.tap_adapters import TapOutput
from .tap_queue import TapQueue


class SpreadFloor(nn.Module):
    """Per task, ``mean_d relu(ratio * ref - std_d)`` for the embedding ``f`` and for the latent ``z``.

    ``std_d`` is the per-dimension std over the current batch and the queued samples, all re-encoded with the
    current parameters; ``ref`` is the mean per-dimension std over the first ``warmup`` updates (the loss is zero
    until then).

    Args:
        tasks (list[str]): task names.
        ratio (float): floor as a fraction of the early std, in ``(0, 1]``.
        loss_weight (float): weight of the summed hinges.
        queue_size (int): recent samples kept per task (their detached tap outputs).
        warmup (int): updates over which the reference std is averaged.
    """

    def __init__(self, tasks, ratio: float = 0.5, loss_weight: float = 1.0, queue_size: int = 8,
                 warmup: int = 10) -> None:
        super().__init__()
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f'spread_floor ratio must be in (0, 1], got {ratio}')
        if queue_size < 1 or warmup < 1:
            raise ValueError(f'spread_floor queue_size and warmup must be >= 1, got {queue_size} and {warmup}')
        self.tasks, self.ratio, self.loss_weight = list(tasks), float(ratio), float(loss_weight)
        self.warmup = int(warmup)
        self.queues = {task: TapQueue(queue_size) for task in self.tasks}
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))
        self.register_buffer('reference', torch.zeros(len(self.tasks), 2))  # per task: (embedding, latent)

    def forward(self, taps: Dict[str, TapOutput], embeddings: Dict[str, Tensor], latents: Dict[str, Tensor],
                aggregators: nn.ModuleDict, flows: nn.ModuleDict) -> Tensor:
        """Scalar loss (``loss_weight`` times the hinges summed over tasks and over ``f`` / ``z``).

        Args:
            taps: ``{task: TapOutput}`` of the current batch (graph kept); they enter the queues afterwards.
            embeddings, latents: ``{task: [B, D]}`` of the current batch (graph kept).
            aggregators, flows: the plug-in's per-task modules.
        """
        total = sum(z.sum() for z in latents.values()) * 0.0
        active = len(self.queues[self.tasks[0]]) > 0
        if active:
            self.steps += 1
        for index, task in enumerate(self.tasks):
            queue = self.queues[task]
            if active:
                f_queue = aggregators[task](queue.batch())
                rows = (torch.cat([embeddings[task], f_queue]), torch.cat([latents[task], flows[task](f_queue)]))
                for slot, x in enumerate(rows):
                    std = (x.float().var(dim=0) + 1e-8).sqrt()                                       # [D]
                    reference = self.reference[index, slot]
                    if int(self.steps) <= self.warmup:
                        reference += (std.detach().mean() - reference) / int(self.steps)
                    else:
                        total = total + torch.relu(self.ratio * reference - std).mean()
            queue.push(taps[task])
        return self.loss_weight * total
