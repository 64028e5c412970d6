"""``NYUv2DataPreprocessor``: stack the packed NYUv2 images into a batch (mmengine ``ImgDataPreprocessor``)."""
from typing import Optional, Sequence

from mmengine.model import ImgDataPreprocessor

from mmdet3d.registry import MODELS


@MODELS.register_module('NexusFlowNYUv2DataPreprocessor')
class NYUv2DataPreprocessor(ImgDataPreprocessor):
    """Move a ``pseudo_collate`` batch to the device and stack its images.

    Input: ``{'inputs': list of B float [3, H, W], 'data_samples': list of B BaseDataElement}`` (``PackNYUv2Inputs``).
    Output: ``{'inputs': float [B, 3, H, W], 'data_samples': [B]}``, images ``(img - mean) / std`` when ``mean`` and
    ``std`` are given, else unchanged (MTAN feeds RGB in ``[0, 1]``). No padding: the ground truth stays aligned
    with the images, so every image of a batch must have the same size (``RandomScaleCrop`` keeps it).

    Args:
        mean (Sequence[float], optional): per-channel mean, RGB order.
        std (Sequence[float], optional): per-channel std, RGB order.
        non_blocking (bool): non-blocking host-to-device copies.
    """

    def __init__(self, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                 non_blocking: bool = False) -> None:
        if (mean is None) != (std is None):
            raise ValueError(f'give both mean and std or neither, got mean={mean}, std={std}')
        super().__init__(mean=mean, std=std, pad_size_divisor=1, non_blocking=non_blocking)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Stack and normalise; ``ValueError`` unless every image is ``[3, H, W]`` with one common size."""
        shapes = sorted({tuple(img.shape) for img in data['inputs']})
        if len(shapes) != 1 or len(shapes[0]) != 3 or shapes[0][0] != 3:
            raise ValueError(f'NYUv2DataPreprocessor expects images [3, H, W] of one size per batch, got shapes '
                             f'{shapes}')
        return super().forward(data, training)
