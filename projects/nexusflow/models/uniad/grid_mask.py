"""GridMask image augmentation (Chen et al., 2020) as UniAD / BEVFormer use it during training."""
import numpy as np
import torch
from mmengine.model import BaseModule

from mmdet3d.registry import MODELS


@MODELS.register_module('UniADGridMask')
class GridMask(BaseModule):
    """Zeroes a random rotated grid of square holes in every training image (identity in eval mode).

    Args:
        ratio (float): fraction of each grid period that is masked, in (0, 1).
        rotate (float): maximum rotation of the grid in degrees (uniform in [0, rotate)).
        prob (float): probability of applying the mask to a batch.
        min_period_frac / max_period_frac (float): grid period range as a fraction of the shorter image side.
        seed (int): seed of the module's own generator, so that the mask never touches the global RNG streams.
    """

    def __init__(self, ratio: float = 0.5, rotate: float = 1.0, prob: float = 0.7, min_period_frac: float = 0.03,
                 max_period_frac: float = 0.3, seed: int = 0):
        super().__init__()
        if not 0 < ratio < 1 or not 0 <= prob <= 1:
            raise ValueError(f'GridMask needs 0 < ratio < 1 and 0 <= prob <= 1, got ratio={ratio}, prob={prob}')
        self.ratio, self.rotate, self.prob = ratio, rotate, prob
        self.period_range = (min_period_frac, max_period_frac)
        self.rng = np.random.default_rng(seed)

    def _mask(self, height: int, width: int) -> np.ndarray:
        side = min(height, width)
        period = int(self.rng.integers(max(2, int(side * self.period_range[0])),
                                       max(3, int(side * self.period_range[1]))))
        hole = max(1, int(period * self.ratio))
        angle = np.deg2rad(self.rng.uniform(0, self.rotate))
        offset = self.rng.integers(0, period, size=2)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        u = np.cos(angle) * xs + np.sin(angle) * ys + offset[0]
        v = -np.sin(angle) * xs + np.cos(angle) * ys + offset[1]
        return ~(((u % period) < hole) & ((v % period) < hole))

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """imgs: ``[..., 3, H, W]`` normalised images -> same shape with the grid holes set to 0."""
        if not self.training or self.rng.random() > self.prob:
            return imgs
        mask = torch.from_numpy(self._mask(*imgs.shape[-2:])).to(imgs)
        return imgs * mask
