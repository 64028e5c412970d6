"""``NonFiniteGuardTrainLoop``: what a run does when an iteration meets NaN/inf (``train_cfg.nonfinite_policy``).

The model raises ``FloatingPointError`` before the update when a loss, a BEV or a head's predictions are not
finite (``UniADTrackMap(nan_check=True)``, ``models/layers/finite.py``). With ``nonfinite_policy='raise'``
(default) the run stops with that message, as with mmengine's ``EpochBasedTrainLoop``. With ``'skip'`` the
iteration's update is dropped (no backward, no optimizer step; gradients zeroed), a warning with the message is
logged, the count is kept in the message hub (``nonfinite_skips``, also in the checkpoint's ``message_hub``), and
the run stops after ``max_consecutive_skips`` skipped iterations in a row: one bad batch does not end a long run,
a diverged model does. UniAD instead zeroes non-finite losses and still steps the optimizer.

In a distributed run every process takes the same decision: the failure flag is all-reduced (max) before the
backward pass, so all processes skip the update together and DDP's gradient all-reduce stays paired.
"""
import logging
from typing import Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop

from mmdet3d.registry import LOOPS

__all__ = ['NonFiniteGuardTrainLoop']

POLICIES = ('raise', 'skip')


@LOOPS.register_module('NexusFlowNonFiniteGuardTrainLoop')
class NonFiniteGuardTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` with a policy for non-finite iterations.

    Args:
        nonfinite_policy (str): ``'raise'`` (stop with the model's message) or ``'skip'`` (drop the update).
        max_consecutive_skips (int): with ``'skip'``, stop after this many skipped iterations in a row, ``>= 1``.
        Other arguments: as ``EpochBasedTrainLoop``.
    """

    def __init__(self, runner, dataloader, max_epochs: int, val_begin: int = 1, val_interval: int = 1,
                 dynamic_intervals: Optional[list] = None, nonfinite_policy: str = 'raise',
                 max_consecutive_skips: int = 10) -> None:
        if nonfinite_policy not in POLICIES:
            raise ValueError(f'train_cfg.nonfinite_policy must be one of {POLICIES}, got {nonfinite_policy!r}')
        if max_consecutive_skips < 1:
            raise ValueError(f'train_cfg.max_consecutive_skips must be >= 1, got {max_consecutive_skips}')
        super().__init__(runner, dataloader, max_epochs, val_begin, val_interval, dynamic_intervals)
        self.nonfinite_policy, self.max_consecutive_skips = nonfinite_policy, max_consecutive_skips
        self.consecutive_skips = 0

    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        if self.nonfinite_policy == 'raise':
            return super().run_iter(idx, data_batch)
        self.runner.call_hook('before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self._guarded_train_step(data_batch)
        self.runner.call_hook('after_train_iter', batch_idx=idx, data_batch=data_batch, outputs=outputs)
        self._iter += 1

    def _guarded_train_step(self, data_batch) -> Optional[dict]:
        """``BaseModel.train_step`` with the update skipped when any process met a ``FloatingPointError``."""
        model, optim_wrapper = self.runner.model, self.runner.optim_wrapper
        module = model.module if is_model_wrapper(model) else model
        error = None
        with optim_wrapper.optim_context(model):
            data = module.data_preprocessor(data_batch, True)
            try:
                losses = model._run_forward(data, mode='loss')
                parsed, log_vars = module.parse_losses(losses)
            except FloatingPointError as err:
                error = err
        if not self._any_process_failed(error is not None):
            optim_wrapper.update_params(parsed)
            self.consecutive_skips = 0
            return log_vars
        optim_wrapper.zero_grad()
        self.consecutive_skips += 1
        total = self.runner.message_hub.get_info('nonfinite_skips', 0) + 1
        self.runner.message_hub.update_info('nonfinite_skips', total)
        reason = str(error) if error is not None else 'another process met non-finite values'
        print_log(f'iteration {self._iter}: update skipped (train_cfg.nonfinite_policy=skip; {total} skipped so far, '
                  f'{self.consecutive_skips} in a row): {reason}', logger='current', level=logging.WARNING)
        if self.consecutive_skips >= self.max_consecutive_skips:
            raise FloatingPointError(f'{self.consecutive_skips} consecutive iterations skipped for non-finite '
                                     f'values (train_cfg.max_consecutive_skips={self.max_consecutive_skips}): '
                                     f'training diverged. Last: {reason}')
        return None

    @staticmethod
    def _any_process_failed(failed: bool) -> bool:
        if get_world_size() == 1:
            return failed
        flag = torch.tensor([float(failed)])
        all_reduce(flag, op='max')
        return bool(flag.item())
