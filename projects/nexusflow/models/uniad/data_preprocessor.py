"""Batches clips of multi-view images for :class:`UniADTrackMap`."""
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor

from mmdet3d.registry import MODELS


@MODELS.register_module('UniADTrackMapDataPreprocessor')
class TrackMapDataPreprocessor(BaseDataPreprocessor):
    """Moves a collated batch of clips to the device, normalises and pads the images.

    Input (``clip_collate`` output): ``{'inputs': {'img': list of B uint8 tensors [Q, N, 3, H, W]},
    'data_samples': list of B lists of Q Det3DDataSample}``.

    Output: ``{'inputs': {'imgs': float [B, Q, N, 3, H_pad, W_pad]}, 'data_samples': [B][Q]}`` where the images are
    ``(img[..., channel_order, :, :] - mean) / std`` and zero-padded at the bottom/right to a multiple of
    ``pad_size_divisor`` (so pixel coordinates, and therefore ``lidar2img``, are unchanged). Every data sample gets
    ``batch_input_shape`` and ``pad_shape`` = ``(H_pad, W_pad)`` in its metainfo.

    Args:
        mean (Sequence[float]): per-channel mean, in the channel order of the output.
        std (Sequence[float]): per-channel std, same order.
        bgr_to_rgb (bool): flip the channel order of the loaded images (loaded as BGR by OpenCV) before normalising.
        pad_size_divisor (int): pad height and width up to a multiple of it.
    """

    def __init__(self, mean: Sequence[float] = (103.530, 116.280, 123.675), std: Sequence[float] = (1.0, 1.0, 1.0),
                 bgr_to_rgb: bool = False, pad_size_divisor: int = 32, non_blocking: Optional[bool] = False):
        super().__init__(non_blocking=non_blocking)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f'mean and std need 3 values each, got {len(mean)} and {len(std)}')
        if pad_size_divisor < 1:
            raise ValueError(f'pad_size_divisor must be >= 1, got {pad_size_divisor}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.bgr_to_rgb = bgr_to_rgb
        self.pad_size_divisor = pad_size_divisor

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        imgs, samples = data['inputs']['img'], data['data_samples']
        if isinstance(imgs, torch.Tensor):
            imgs = list(imgs)
        shapes = {tuple(img.shape) for img in imgs}
        if len(shapes) != 1:
            raise ValueError(f'all clips of a batch need the same [Q, N, 3, H, W] shape, got {sorted(shapes)}')
        batch = torch.stack(imgs).float()  # [B, Q, N, 3, H, W]
        if batch.dim() != 6 or batch.shape[3] != 3:
            raise ValueError(f'expected images of shape [B, Q, N, 3, H, W], got {tuple(batch.shape)}')
        if self.bgr_to_rgb:
            batch = batch.flip(3)
        batch = (batch - self.mean) / self.std
        height, width = batch.shape[-2:]
        pad_h = math.ceil(height / self.pad_size_divisor) * self.pad_size_divisor
        pad_w = math.ceil(width / self.pad_size_divisor) * self.pad_size_divisor
        if (pad_h, pad_w) != (height, width):
            batch = F.pad(batch, (0, pad_w - width, 0, pad_h - height))
        for clip in samples:
            for sample in clip:
                sample.set_metainfo(dict(batch_input_shape=(pad_h, pad_w), pad_shape=(pad_h, pad_w)))
        return dict(inputs=dict(imgs=batch), data_samples=samples)
