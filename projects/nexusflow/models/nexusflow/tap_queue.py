"""``TapQueue``: the detached tap outputs of a task's last training samples, for statistics at fixed parameters.

UniAD trains one clip per GPU, so a per-dimension std of NexusFlow's embeddings or latents needs samples from earlier
steps. Statistics of the embeddings or latents *as they were computed* mix in the drift of the aggregator and flow
since then: at the start of phase 2 on the tiny model an EMA over ~50 steps reported a track latent std of 0.16, 5x
the 0.029 measured over the val set with the parameters held fixed. Keeping the taps (the host's features) and
re-encoding them with the current parameters measures the spread of one and the same map.
"""
from typing import List

from ...core.tap_adapters import TapOutput, cat_taps


class TapQueue:
    """The last ``size`` tap outputs pushed (detached, newest first).

    Args:
        size (int): tap outputs kept (each holds one training batch, ``B`` rows).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f'a tap queue needs size >= 1, got {size}')
        self.size = int(size)
        self.items: List[TapOutput] = []

    def __len__(self) -> int:
        return len(self.items)

    def rows(self) -> int:
        """Samples held (the batch sizes summed)."""
        return sum(tap.features.shape[0] for tap in self.items)

    def push(self, tap: TapOutput) -> None:
        """Keep a detached copy of ``tap``; the oldest falls out beyond ``size``."""
        mask = None if tap.padding_mask is None else tap.padding_mask.detach()
        self.items.insert(0, TapOutput(tap.features.detach(), tap.positions.detach(), mask, tap.spatial_shape))
        del self.items[self.size:]

    def clear(self) -> None:
        """Drop every kept tap."""
        self.items.clear()

    def batch(self) -> TapOutput:
        """All kept taps as one batch (query sets padded, see :func:`cat_taps`)."""
        return cat_taps(self.items)
