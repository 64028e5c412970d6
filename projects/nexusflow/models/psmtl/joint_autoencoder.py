"""``JointTaskAutoEncoder``: JTR's encoder-decoder over the stacked rasters of all tasks.

Follows the official JTR code (``code/models/nyuv2_segnet_jtr.py``, ``SegNet_JTR``): a SegNet auto-encoder, each
encoder stage two conv3x3-norm-ReLU blocks and a 2x2 max-pool (indices kept), each decoder stage a max-unpool with
those indices and two conv blocks, then ``conv3x3 -> conv1x1`` to the input channels (reconstruction logits); the
encoder output is the joint-task latent. Xavier-normal convs, zero biases. Changed: the number and widths of the
stages are configurable (the official five stages of 64-512 channels are sized for 288x384 images); unpooling
restores odd sizes; the default norm is the instance norm that the official ``BatchNorm2d`` computes on its
per-sample batches of one (``film.py``); :meth:`encode_frozen` replaces the official ``copy.deepcopy`` of the
network by a functional call with detached parameters (same values, no gradient to them, no copy).
"""
from typing import List, Optional, Sequence, Tuple

from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from mmdet3d.registry import MODELS
from .film import DEFAULT_NORM


def conv_block(in_channels: int, out_channels: int, norm_cfg: dict) -> nn.Sequential:
    """conv3x3 -> norm -> ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1),
                         build_norm_layer(norm_cfg, out_channels)[1], nn.ReLU(inplace=True))


class JointTaskEncoder(BaseModule):
    """SegNet encoder: per stage two conv blocks and a 2x2 max-pool.

    Args:
        in_channels (int): stacked raster channels.
        channels (Sequence[int]): width of each stage.
        norm_cfg (dict): mmcv norm config.
    """

    def __init__(self, in_channels: int, channels: Sequence[int], norm_cfg: dict) -> None:
        super().__init__()
        dims = [in_channels] + list(channels)
        self.stages = nn.ModuleList([nn.Sequential(conv_block(dims[i], dims[i + 1], norm_cfg),
                                                   conv_block(dims[i + 1], dims[i + 1], norm_cfg))
                                     for i in range(len(channels))])

    def forward(self, x: Tensor) -> Tuple[Tensor, List[Tensor], List[Tuple[int, int]]]:
        """``x`` ``[N, C_in, H, W]`` -> latent ``[N, channels[-1], H / 2^S, W / 2^S]`` (floored per stage), the
        pooling indices and the pre-pooling sizes of each stage."""
        indices, sizes = [], []
        for stage in self.stages:
            x = stage(x)
            sizes.append(tuple(x.shape[-2:]))
            x, index = F.max_pool2d(x, 2, 2, return_indices=True)
            indices.append(index)
        return x, indices, sizes


class JointTaskDecoder(BaseModule):
    """SegNet decoder: per stage (deepest first) max-unpool, conv block to the shallower width, conv block; then
    ``conv3x3 -> conv1x1`` to ``out_channels`` logits.

    Args:
        out_channels (int): reconstructed raster channels.
        channels (Sequence[int]): widths of the encoder stages (shallow to deep).
        norm_cfg (dict): mmcv norm config.
    """

    def __init__(self, out_channels: int, channels: Sequence[int], norm_cfg: dict) -> None:
        super().__init__()
        dims = [channels[0]] + list(channels)
        self.stages = nn.ModuleList([nn.Sequential(conv_block(dims[i + 1], dims[i], norm_cfg),
                                                   conv_block(dims[i], dims[i], norm_cfg))
                                     for i in reversed(range(len(channels)))])
        self.pred_layer = nn.Sequential(nn.Conv2d(channels[0], channels[0], 3, padding=1),
                                        nn.Conv2d(channels[0], out_channels, 1))

    def forward(self, latent: Tensor, indices: List[Tensor], sizes: List[Tuple[int, int]]) -> Tensor:
        """Latent and the encoder's pooling record -> reconstruction logits ``[N, out_channels, H, W]``."""
        x = latent
        for stage, index, size in zip(self.stages, reversed(indices), reversed(sizes)):
            x = stage(F.max_unpool2d(x, index, 2, 2, output_size=size))
        return self.pred_layer(x)


@MODELS.register_module('NexusFlowJointTaskAutoEncoder')
class JointTaskAutoEncoder(BaseModule):
    """JTR's joint-task auto-encoder ``g = g2 o g1``.

    Args:
        in_channels (int): channels of the stacked task rasters (sum over tasks).
        channels (Sequence[int]): encoder stage widths; the latent has ``channels[-1]`` channels at
            ``1 / 2^len(channels)`` of the canvas (floored per stage, so the canvas must be >= ``2^len(channels)``).
        norm_cfg (dict): mmcv norm config of every conv block.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (64, 128, 256), norm_cfg: dict = DEFAULT_NORM,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1 or not channels or min(channels) < 1:
            raise ValueError(f'need in_channels >= 1 and positive stage widths, got {in_channels} and {channels}')
        self.encoder = JointTaskEncoder(in_channels, channels, norm_cfg)
        self.decoder = JointTaskDecoder(in_channels, channels, norm_cfg)
        self.min_size = 2 ** len(channels)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or min(x.shape[-2:]) < self.min_size:
            raise ValueError(f'expected stacked rasters [N, C, H, W] with H, W >= {self.min_size} '
                             f'({len(self.encoder.stages)} pooling stages), got {tuple(x.shape)}; use fewer stages')

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Encode and reconstruct.

        Args:
            x (Tensor): ``[N, C_in, H, W]`` float stacked rasters in ``[0, 1]``.

        Returns:
            tuple[Tensor, Tensor]: latent ``[N, channels[-1], h, w]`` (``>= 0``) and reconstruction logits
            ``[N, C_in, H, W]``.
        """
        self._check(x)
        latent, indices, sizes = self.encoder(x)
        return latent, self.decoder(latent, indices, sizes)

    def encode_frozen(self, x: Tensor) -> Tensor:
        """The latent ``[N, channels[-1], h, w]`` with the encoder's current parameters detached: gradients reach
        ``x`` only (buffers, if a norm has any, are copied so that running statistics are not updated)."""
        self._check(x)
        state = {name: p.detach() for name, p in self.encoder.named_parameters()}
        state.update({name: b.clone() for name, b in self.encoder.named_buffers()})
        return functional_call(self.encoder, state, (x, ))[0]
