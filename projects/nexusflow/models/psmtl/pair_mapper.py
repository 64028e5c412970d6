"""``TaskPairMapper``: MTPSL's task-pair-conditioned mapping network ``m(x | input task, pair (s, t))``.

Follows the official code (``model/mapfns.py``, ``SegNet_enc``): a task-specific input layer per task (conv3x3 ->
norm -> ReLU, from the task's ``O_t`` channels), then a shared conv encoder whose every conv is FiLM-conditioned on
the one-hot task pair (``film.py``); Xavier-normal convs with zero bias, norms at weight 1 / bias 0. The shared
encoder is configurable for the two grids it meets:

- images (NYUv2 / MTAN, the official layout): SegNet encoder stages (``stage_depths=(2, 2, 3, 3, 3)`` with widths
  64-128-256-512-512), each followed by a 2x2 stride-2 max-pool, ReLU after every conv (``last_act=True``), so
  ``m(y)`` lands on the resolution of the backbone bottleneck it is compared with (``H/32 x W/32``, 9x12 for a
  288x384 image, with the same floor rounding as the backbone's pools);
- the BEV (UniAD, the default): a few stride-1 FiLM convs, because ``m(y)`` is compared cell by cell with the BEV
  features at their own resolution; the last conv has no ReLU since the BEV features are signed.

Changed: entries of different tasks and pairs run as one batch (exact with the default instance norms, see
``film.py``).
"""
from itertools import accumulate
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from .film import DEFAULT_NORM, FiLMConv

# FiLM convs per stage of the official NYUv2 mapping network (SegNet encoder, filters 64-128-256-512-512)
SEGNET_STAGE_DEPTHS = (2, 2, 3, 3, 3)


def segnet_channels(filters: Sequence[int] = (64, 128, 256, 512, 512),
                    stage_depths: Sequence[int] = SEGNET_STAGE_DEPTHS) -> tuple:
    """``channels`` of a :class:`TaskPairMapper` with SegNet encoder stages: the input-layer width ``filters[0]``,
    then the output width of every FiLM conv but the last (which maps to ``out_channels = filters[-1]``).

    Example: ``segnet_channels()`` = ``(64, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512)``.
    """
    if len(filters) != len(stage_depths) or min(stage_depths) < 1:
        raise ValueError(f'need one filter count per stage and stages of >= 1 conv, got filters={filters}, '
                         f'stage_depths={stage_depths}')
    outputs = [width for width, depth in zip(filters, stage_depths) for _ in range(depth)]
    return (filters[0], ) + tuple(outputs[:-1])


@MODELS.register_module('NexusFlowTaskPairMapper')
class TaskPairMapper(BaseModule):
    """Map a task raster into the joint space of a task pair.

    Args:
        in_channels (dict[str, int]): task name -> raster channels ``O_t``; the order is the task index of the
            pair code (``K >= 2`` tasks).
        out_channels (int): output channels, the channels ``C`` of the features the outputs are compared with.
        channels (Sequence[int]): width of the input layers, then of each ReLU'd FiLM conv; a last FiLM conv maps
            to ``out_channels`` (``len(channels)`` FiLM convs in all).
        stage_depths (Sequence[int], optional): group the FiLM convs into stages of these many convs (summing to
            ``len(channels)``), each followed by a 2x2 stride-2 max-pool (floor), as the official SegNet encoder
            (``(2, 2, 3, 3, 3)``, see :func:`segnet_channels`). ``None``: no pooling, the output keeps the input
            resolution.
        last_act (bool): a ReLU after the last FiLM conv too (the official encoder; its target, a post-ReLU
            bottleneck, is non-negative). ``False`` for signed targets such as the BEV features.
        norm_cfg (dict): mmcv norm config of every layer (see :class:`FiLMConv`).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, in_channels: Dict[str, int], out_channels: int, channels: Sequence[int] = (64, 64, 128),
                 stage_depths: Optional[Sequence[int]] = None, last_act: bool = False,
                 norm_cfg: dict = DEFAULT_NORM, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) < 2 or not channels or min(channels) < 1 or out_channels < 1:
            raise ValueError(f'TaskPairMapper needs >= 2 tasks and positive widths, got in_channels={in_channels}, '
                             f'channels={channels}, out_channels={out_channels}')
        self.tasks = list(in_channels)
        self.pool_after = self._pool_positions(stage_depths, len(channels))
        num_tasks = len(self.tasks)
        self.input_layers = nn.ModuleDict({
            task: nn.Sequential(nn.Conv2d(num, channels[0], 3, padding=1), build_norm_layer(norm_cfg, channels[0])[1],
                                nn.ReLU(inplace=True))
            for task, num in in_channels.items()})
        dims = list(channels) + [out_channels]
        self.layers = nn.ModuleList([
            FiLMConv(dims[i], dims[i + 1], num_tasks * (num_tasks - 1), norm_cfg,
                     with_act=last_act or i + 2 < len(dims))
            for i in range(len(dims) - 1)])
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    @staticmethod
    def _pool_positions(stage_depths: Optional[Sequence[int]], num_convs: int) -> tuple:
        """Indices of the FiLM convs followed by a max-pool (the last conv of every stage)."""
        if stage_depths is None:
            return ()
        if not stage_depths or min(stage_depths) < 1 or sum(stage_depths) != num_convs:
            raise ValueError(f'stage_depths must be positive and sum to the {num_convs} FiLM convs (len(channels)), '
                             f'got {stage_depths}')
        return tuple(end - 1 for end in accumulate(stage_depths))

    @property
    def num_tasks(self) -> int:
        """Number of tasks ``K``."""
        return len(self.tasks)

    def output_size(self, height: int, width: int) -> tuple:
        """Spatial size ``(H', W')`` of the output for an ``H x W`` input (halved with floor per stage)."""
        for _ in self.pool_after:
            height, width = height // 2, width // 2
        return height, width

    def forward(self, inputs: Sequence[Tensor], input_tasks: Sequence[str], codes: Tensor) -> Tensor:
        """Map ``N`` rasters, each through its task's input layer, then the shared FiLM convs (and pools).

        Args:
            inputs (Sequence[Tensor]): ``N`` float rasters ``[O_t, H, W]`` on one canvas (``O_t`` of their task).
            input_tasks (Sequence[str]): ``N`` task names, the task each raster belongs to.
            codes (Tensor): ``[N, K (K - 1)]`` float one-hot pair code of each entry (``film.pair_codes``).

        Returns:
            Tensor: ``[N, out_channels, H', W']`` float, entry ``n`` for ``inputs[n]``; ``(H', W')`` =
            :meth:`output_size` (``(H, W)`` without stages); non-negative with ``last_act``.
        """
        if len(inputs) != len(input_tasks) or len(inputs) != codes.shape[0] or not inputs:
            raise ValueError(f'need as many inputs, tasks and codes (>= 1), got {len(inputs)}, {len(input_tasks)} '
                             f'and {codes.shape[0]}')
        unknown = sorted(set(input_tasks) - set(self.tasks))
        if unknown:
            raise KeyError(f'unknown input tasks {unknown}; the mapper knows {self.tasks}')
        parts, order = [], []
        for task in self.tasks:
            index = [n for n, name in enumerate(input_tasks) if name == task]
            if index:
                parts.append(self.input_layers[task](torch.stack([inputs[n] for n in index])))
                order += index
        hidden = torch.cat(parts)[torch.argsort(torch.tensor(order, device=codes.device))]
        for index, layer in enumerate(self.layers):
            hidden = layer(hidden, codes)
            if index in self.pool_after:
                hidden = F.max_pool2d(hidden, 2, 2)
        return hidden
