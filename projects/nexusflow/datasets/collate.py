"""Collate function for clip items (registered in ``mmengine.registry.FUNCTIONS``; mmdet3d has no such registry)."""
from typing import Sequence

from mmengine.registry import FUNCTIONS


@FUNCTIONS.register_module('nexusflow_clip_collate')
def clip_collate(data_batch: Sequence[dict]) -> dict:
    """Batch clip items, keeping the sample-major layout.

    mmengine's ``pseudo_collate`` would transpose the per-item lists of Q data samples into Q frame-major lists;
    this keeps one list per item.

    Args:
        data_batch (Sequence[dict]): B >= 1 items ``{'inputs': {'img': uint8 Tensor [Q, N, 3, H, W]},
            'data_samples': list of Q Det3DDataSample}``.

    Returns:
        dict: ``{'inputs': {'img': list of B tensors [Q, N, 3, H, W]}, 'data_samples': list of B lists of Q}``.
    """
    if len(data_batch) == 0:
        raise ValueError('clip_collate got an empty batch')
    for i, item in enumerate(data_batch):
        if not isinstance(item, dict) or 'inputs' not in item or 'data_samples' not in item:
            raise TypeError(f'item {i} of the batch is not a clip dict with inputs / data_samples: {type(item)}')
        if len(item['data_samples']) != item['inputs']['img'].shape[0]:
            raise ValueError(f'item {i}: {len(item["data_samples"])} data samples for '
                             f'{item["inputs"]["img"].shape[0]} frames of images')
    return dict(inputs=dict(img=[item['inputs']['img'] for item in data_batch]),
                data_samples=[list(item['data_samples']) for item in data_batch])
