"""Task-pair FiLM conditioning of MTPSL's mapping network.

Follows the official MTPSL code (``model/mapfns.py``, ``conv_task``): conv3x3 -> norm -> ``x * gamma + beta`` ->
ReLU, where ``gamma = A @ G^T`` and ``beta = A @ Be^T`` are linear maps of the one-hot task-pair code ``A``
(the ``K x K`` matrix with ``A[s, t] = 1``, diagonal removed, flattened to ``K (K - 1)``), ``G`` initialised to ones
and ``Be`` to zeros, so every pair starts from the plain conv. Changed: the code is per batch entry (``[N, P]``
rather than one global pair), so entries of different pairs run in one batch; the activation can be switched off
(the last layer of our mapper, whose target, the BEV feature, is signed).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

DEFAULT_NORM = dict(type='IN', affine=True)


def pair_code_index(source: int, target: int, num_tasks: int) -> int:
    """Index of the pair ``(source, target)`` in the flattened off-diagonal ``K x K`` matrix (row-major).

    Raises:
        ValueError: ``source == target`` or an index outside ``[0, num_tasks)``.
    """
    if source == target or not (0 <= source < num_tasks and 0 <= target < num_tasks):
        raise ValueError(f'a task pair needs two different task indices in [0, {num_tasks}), got ({source}, '
                         f'{target})')
    return source * (num_tasks - 1) + (target if target < source else target - 1)


def pair_codes(sources: Tensor, targets: Tensor, num_tasks: int) -> Tensor:
    """One-hot pair codes ``[N, K (K - 1)]`` float for ``N`` pairs of task indices (long ``[N]`` each)."""
    index = [pair_code_index(int(s), int(t), num_tasks) for s, t in zip(sources.tolist(), targets.tolist())]
    return F.one_hot(torch.tensor(index, dtype=torch.long, device=sources.device),
                     num_tasks * (num_tasks - 1)).float()


class FiLMConv(BaseModule):
    """conv3x3 -> norm -> FiLM(pair code) -> [ReLU].

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels ``C``.
        code_dim (int): length ``P`` of the pair code, ``K (K - 1)``.
        norm_cfg (dict): mmcv norm config. The default, ``InstanceNorm2d(affine=True)``, is what the official
            code's ``BatchNorm2d`` computes on its batches of one map in training, so batching entries is exact.
        with_act (bool): end with a ReLU.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, in_channels: int, out_channels: int, code_dim: int, norm_cfg: dict = DEFAULT_NORM,
                 with_act: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = build_norm_layer(norm_cfg, out_channels)[1]
        self.film_gamma = nn.Parameter(torch.ones(out_channels, code_dim))
        self.film_beta = nn.Parameter(torch.zeros(out_channels, code_dim))
        self.with_act = with_act

    def forward(self, x: Tensor, code: Tensor) -> Tensor:
        """Convolve, normalise and modulate.

        Args:
            x (Tensor): ``[N, C_in, H, W]`` float feature maps.
            code (Tensor): ``[N, P]`` float one-hot task-pair code of each entry.

        Returns:
            Tensor: ``[N, C, H, W]`` float (``>= 0`` with the activation).
        """
        if code.shape != (x.shape[0], self.film_gamma.shape[1]):
            raise ValueError(f'code must be [N, P] = [{x.shape[0]}, {self.film_gamma.shape[1]}], got '
                             f'{tuple(code.shape)}')
        x = self.norm(self.conv(x))
        gamma = (code @ self.film_gamma.t())[..., None, None]  # [N, C, 1, 1]
        beta = (code @ self.film_beta.t())[..., None, None]
        x = x * gamma + beta
        return F.relu(x) if self.with_act else x
