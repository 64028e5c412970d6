"""``check_finite``: one clear ``FloatingPointError`` before a NaN/inf reaches code that fails obscurely on it.

scipy's ``linear_sum_assignment`` raises "matrix contains invalid numeric entries" on a NaN cost, and a NaN
replaced by a large number silently matches arbitrary queries; both heads call this on their predictions first.
The error type is the one the detector's loss check raises, so ``NonFiniteGuardTrainLoop`` (``train_cfg``
``nonfinite_policy='skip'``) handles all of them alike.
"""
from typing import Dict

import torch

__all__ = ['NONFINITE_ADVICE', 'check_finite']

NONFINITE_ADVICE = ('training diverged or the inputs hold NaN/inf. Lower the learning rate, keep gradient clipping '
                    'on (optim_wrapper.clip_grad), check the data, or let the run drop such iterations with '
                    "--cfg-options train_cfg.nonfinite_policy=skip")


def check_finite(tensors: Dict[str, torch.Tensor], where: str) -> None:
    """Raise ``FloatingPointError`` naming ``where`` and each tensor of ``tensors`` that holds NaN or inf."""
    bad = [f'{name} ({int((~torch.isfinite(t)).sum())} of {t.numel()} values)'
           for name, t in tensors.items() if not torch.isfinite(t).all()]
    if bad:
        raise FloatingPointError(f'{where}: non-finite predictions before Hungarian matching: {", ".join(bad)}; '
                                 f'{NONFINITE_ADVICE}')
