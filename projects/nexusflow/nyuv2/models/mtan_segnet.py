"""``MTANSegNet``: the Multi-Task Attention Network on SegNet (Liu et al., CVPR 2019), the NYUv2 backbone of MTAN,
MTPSL, JTR and the N-task NexusFlow paper.

Follows ``lorenmt/mtan: im2im_pred/model_segnet_mtan.py`` layer for layer (filters ``[64, 128, 256, 512, 512]``; a
shared SegNet encoder/decoder with max-pooling indices; per task and stage a soft attention gate
``a = sigmoid-mask(g) * p`` on the shared features; shared 3x3 convolutions between the attention stages). What
changed: convolutions are mmcv ``ConvModule`` (no bias before a norm layer); a ``width`` multiplier scales every
filter count; the attention path is upsampled to the exact size of the shared decoder stage, so any ``H, W >= 32``
works (identical to MTAN's ``scale_factor=2`` when ``H, W`` are multiples of 32); the heads live in ``heads.py``.

Tap points (forward outputs, for plug-ins): ``decoder_attention.<task>.4`` is the task's attended feature map
``[B, C0, H, W]`` that its head reads (``C0 = 64 * width``); ``encoder_attention.<task>.<j>`` the attended encoder
features of stage ``j``; ``encoder_pools.4`` (tuple, ``index=0``) the shared bottleneck ``[B, C4, H/32, W/32]``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ..meta import TASKS

MTAN_FILTERS = (64, 128, 256, 512, 512)
MTAN_INIT = [dict(type='Xavier', distribution='normal', layer='Conv2d'),
             dict(type='Constant', val=1.0, bias=0.0, layer='BatchNorm2d')]


def conv_stack(in_channels: int, out_channels: int, num_convs: int, norm_cfg: dict) -> nn.Sequential:
    """``num_convs`` x (3x3 conv, norm, ReLU); the first maps ``in_channels`` to ``out_channels``."""
    return nn.Sequential(*[ConvModule(in_channels if k == 0 else out_channels, out_channels, 3, padding=1,
                                      norm_cfg=norm_cfg) for k in range(num_convs)])


class AttentionGate(BaseModule):
    """MTAN's task attention module: ``features * sigmoid(BN(conv1x1(ReLU(BN(conv1x1(gate_input))))))``.

    Args:
        in_channels (int): channels of ``gate_input``.
        out_channels (int): channels of the mask and of ``features``.
        norm_cfg (dict): norm layer of both 1x1 convolutions.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        self.mask = nn.Sequential(ConvModule(in_channels, out_channels, 1, norm_cfg=norm_cfg),
                                  ConvModule(out_channels, out_channels, 1, norm_cfg=norm_cfg,
                                             act_cfg=dict(type='Sigmoid')))

    def forward(self, gate_input: Tensor, features: Tensor) -> Tensor:
        """``gate_input`` ``[B, in_channels, h, w]``, ``features`` ``[B, out_channels, h, w]`` -> attended
        features ``[B, out_channels, h, w]`` (mask values in ``(0, 1)``)."""
        return self.mask(gate_input) * features


@MODELS.register_module('NexusFlowMTANSegNet')
class MTANSegNet(BaseModule):
    """Shared SegNet plus one attention branch per task (see the module docstring for the tap points).

    Stage ``j`` of the encoder has ``F_j`` filters; the decoder runs in decoding order ``d = 0 .. 4`` (``d = 0`` the
    deepest), stage ``d`` mirrors encoder stage ``k = 4 - d`` and outputs ``F_max(k - 1, 0)`` channels.

    Args:
        tasks (Sequence[str]): one attention branch per task, in output order.
        width (float): multiplier of every filter count (``1.0`` = MTAN; tests use e.g. ``0.0625``).
        filters (Sequence[int]): filter counts of the five stages before ``width``.
        norm_cfg (dict): norm layer of every convolution.
        init_cfg (list[dict]): MTAN's initialisation (Xavier-normal convolutions, BN weight 1 / bias 0).
    """

    def __init__(self, tasks: Sequence[str] = TASKS, width: float = 1.0, filters: Sequence[int] = MTAN_FILTERS,
                 norm_cfg: dict = dict(type='BN'), init_cfg: Optional[Union[dict, List[dict]]] = MTAN_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(filters) != 5 or width <= 0 or len(set(tasks)) != len(tasks) or not tasks:
            raise ValueError(f'MTANSegNet needs 5 filter counts, width > 0 and distinct tasks, got filters={filters}, '
                             f'width={width}, tasks={tasks}')
        self.tasks = tuple(tasks)
        chans = [max(1, int(round(c * width))) for c in filters]
        self.filters = tuple(chans)
        dec_out = [chans[max(k - 1, 0)] for k in range(5)]  # decoder output of the stage mirroring encoder stage k
        self.encoder_first = nn.ModuleList(
            ConvModule(3 if j == 0 else chans[j - 1], chans[j], 3, padding=1, norm_cfg=norm_cfg) for j in range(5))
        self.encoder_second = nn.ModuleList(
            conv_stack(chans[j], chans[j], 1 if j < 2 else 2, norm_cfg) for j in range(5))
        self.encoder_pools = nn.ModuleList(nn.MaxPool2d(2, 2, return_indices=True) for _ in range(5))
        self.decoder_first = nn.ModuleList(
            ConvModule(chans[4 - d], dec_out[4 - d], 3, padding=1, norm_cfg=norm_cfg) for d in range(5))
        self.decoder_second = nn.ModuleList(
            conv_stack(dec_out[4 - d], dec_out[4 - d], 1 if 4 - d < 2 else 2, norm_cfg) for d in range(5))
        self.encoder_att_convs = nn.ModuleList(
            ConvModule(chans[j], chans[min(j + 1, 4)], 3, padding=1, norm_cfg=norm_cfg) for j in range(5))
        self.decoder_att_convs = nn.ModuleList(
            ConvModule(chans[4] if d == 0 else dec_out[5 - d], dec_out[4 - d], 3, padding=1, norm_cfg=norm_cfg)
            for d in range(5))
        self.encoder_attention = nn.ModuleDict({task: nn.ModuleList(
            AttentionGate(chans[j] * (1 if j == 0 else 2), chans[j], norm_cfg) for j in range(5)) for task in tasks})
        self.decoder_attention = nn.ModuleDict({task: nn.ModuleList(
            AttentionGate(chans[4 - d] + dec_out[4 - d], dec_out[4 - d], norm_cfg) for d in range(5))
            for task in tasks})

    @property
    def out_channels(self) -> int:
        """Channels ``C0`` of every task feature map."""
        return self.filters[0]

    def shared(self, images: Tensor) -> Tuple[List[Tensor], ...]:
        """The shared SegNet pass: per encoder stage ``j`` the first-conv and stage outputs, per decoder stage ``d``
        the unpooled input and the stage output (lists of ``[B, C, h, w]``)."""
        enc_first, enc_out, indices = [], [], []
        feats = images
        for first, second, pool in zip(self.encoder_first, self.encoder_second, self.encoder_pools):
            enc_first.append(first(feats))
            enc_out.append(second(enc_first[-1]))
            feats, index = pool(enc_out[-1])
            indices.append(index)
        unpooled, dec_out = [], []
        for d, (first, second) in enumerate(zip(self.decoder_first, self.decoder_second)):
            unpooled.append(F.max_unpool2d(feats, indices[4 - d], 2, 2, output_size=enc_out[4 - d].shape[-2:]))
            feats = second(first(unpooled[-1]))
            dec_out.append(feats)
        return enc_first, enc_out, unpooled, dec_out

    def attend(self, task: str, enc_first: List[Tensor], enc_out: List[Tensor], unpooled: List[Tensor],
               dec_out: List[Tensor]) -> Tensor:
        """One task's attention branch over the shared features: ``[B, C0, H, W]``."""
        att = None
        for j, gate in enumerate(self.encoder_attention[task]):
            gate_input = enc_first[j] if att is None else torch.cat([enc_first[j], att], dim=1)
            att = F.max_pool2d(self.encoder_att_convs[j](gate(gate_input, enc_out[j])), 2, 2)
        for d, gate in enumerate(self.decoder_attention[task]):
            att = F.interpolate(att, size=unpooled[d].shape[-2:], mode='bilinear', align_corners=True)
            att = self.decoder_att_convs[d](att)
            att = gate(torch.cat([unpooled[d], att], dim=1), dec_out[d])
        return att

    def forward(self, images: Tensor) -> Dict[str, Tensor]:
        """Task features of a batch.

        Args:
            images (Tensor): ``[B, 3, H, W]`` float images (NYUv2: RGB in ``[0, 1]``), ``H, W >= 32``.

        Returns:
            dict[str, Tensor]: ``{task: [B, C0, H, W]}`` attended feature maps, in ``tasks`` order.
        """
        if images.dim() != 4 or images.shape[1] != 3 or min(images.shape[-2:]) < 32:
            raise ValueError(f'MTANSegNet expects images [B, 3, H, W] with H, W >= 32 (five 2x2 poolings), got '
                             f'{tuple(images.shape)}')
        shared = self.shared(images)
        return {task: self.attend(task, *shared) for task in self.tasks}
