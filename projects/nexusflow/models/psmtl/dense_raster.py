"""``DenseTaskRaster``: a dense image-space task (NYUv2 segmentation, depth, normals) as MTPSL's mapping net sees it.

Follows the official MTPSL input preprocessing (``model/mapfns.py``: ``pre_process_pred`` / ``pre_process_gt``),
one ``encoding`` per kind of task:

- ``'one_hot'`` (segmentation): the prediction (log-probabilities or logits ``[B, K, H, W]``) becomes one hard
  Gumbel-softmax sample (``tau = 1``, straight-through gradient), the label (class indices, ``ignore_index`` for
  unlabelled pixels) its one-hot map with ignored pixels all zero;
- ``'max_scaled'`` (depth): ``x / (max(x) + 1e-12)`` for prediction and label, the maximum over the sample's pixels
  (invalid depth 0 stays 0);
- ``'unit_vector'`` (normals): ``(n + 1) / 2`` for prediction and label (an invalid all-zero label becomes 0.5, as
  in the official code).

The canvas is the image: the prediction's ``(H, W)`` (:meth:`DenseTaskRaster.native_canvas`), which the labels
share. Changed from the official code: one Gumbel sample per prediction and forward, shared by every pair the task
is the source of (the official loop draws one per pair); a draw containing NaN (an exponential sample of 0) is
redrawn a bounded number of times instead of forever.
"""
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet3d.registry import TASK_UTILS
from .task_rasters import TaskRaster

ENCODINGS = ('one_hot', 'max_scaled', 'unit_vector')
MAX_GUMBEL_DRAWS = 10
EPS = 1e-12  # the official depth normaliser


def hard_gumbel_one_hot(logits: Tensor) -> Tensor:
    """``F.gumbel_softmax(logits, tau=1, hard=True, dim=1)``, redrawn while the sample holds a NaN.

    Args:
        logits (Tensor): ``[B, K, H, W]`` float unnormalised log-probabilities (log-softmax outputs are fine).

    Returns:
        Tensor: ``[B, K, H, W]`` float one-hot over ``K`` at every pixel, straight-through gradient of the soft
        sample.

    Raises:
        FloatingPointError: ``MAX_GUMBEL_DRAWS`` draws all held a NaN (the logits themselves hold NaN or inf).
    """
    for _ in range(MAX_GUMBEL_DRAWS):
        sample = F.gumbel_softmax(logits, tau=1.0, hard=True, dim=1)
        if not torch.isnan(sample).any():
            return sample
    raise FloatingPointError(f'{MAX_GUMBEL_DRAWS} Gumbel-softmax draws all held NaN: the segmentation prediction '
                             'has non-finite values; check the head and the learning rate')


def max_scaled(x: Tensor) -> Tensor:
    """``x / (max(x) + 1e-12)`` per sample: ``[B, C, H, W]`` -> same shape (``[0, 1]`` for non-negative ``x``)."""
    return x / (x.flatten(1).amax(1)[:, None, None, None] + EPS)


@TASK_UTILS.register_module('NexusFlowDenseTaskRaster')
class DenseTaskRaster(TaskRaster):
    """One dense task of an image model: its head's prediction map and the sample's pixel labels, preprocessed as
    the official MTPSL code does (see the module docstring).

    Predictions come from the head's ``pred_tap``: ``prediction`` ``[B, channels, H, W]`` float (the activated head
    output; e.g. ``heads.seg.pred_tap`` of ``MTANMultiTask``). Labels are ``sample.<gt_field>.data`` (``PixelData``):
    ``[1, H, W]`` int class indices for ``'one_hot'``, ``[channels, H, W]`` float otherwise.

    Example (NYUv2 on MTAN)::

        seg=dict(tap='heads.seg.pred_tap', raster=dict(type='NexusFlowDenseTaskRaster', encoding='one_hot', channels=13,
                                                       flag='has_seg', gt_field='gt_sem_seg'))

    Args:
        encoding (str): ``'one_hot'``, ``'max_scaled'`` or ``'unit_vector'``.
        channels (int): raster channels ``O`` (classes for ``'one_hot'``; 1 for depth, 3 for normals).
        flag (str): metainfo key of the per-sample label flag (e.g. ``'has_depth'``; missing = labelled).
        gt_field (str): data-sample field of the pixel labels (e.g. ``'gt_depth'``).
        ignore_index (int): unlabelled pixels of a ``'one_hot'`` label.
    """
    required_keys = ('prediction', )

    def __init__(self, encoding: str, channels: int, flag: str, gt_field: str, ignore_index: int = -1) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f'encoding must be one of {ENCODINGS}, got {encoding!r}')
        if channels < 1 or not flag or not gt_field:
            raise ValueError(f'DenseTaskRaster needs channels >= 1, a flag and a gt_field, got channels={channels}, '
                             f'flag={flag!r}, gt_field={gt_field!r}')
        self.encoding, self.num_channels = encoding, int(channels)
        self.flag, self.gt_field, self.ignore_index = flag, gt_field, int(ignore_index)

    @property
    def channels(self) -> int:
        return self.num_channels

    def native_canvas(self, preds: Dict[str, Tensor]) -> Tuple[int, int]:
        """The prediction's ``(H, W)``: the image grid."""
        return tuple(preds['prediction'].shape[-2:])

    def predictions(self, preds: Dict[str, Tensor], canvas_hw: Tuple[int, int]) -> Tensor:
        """``[B, O, H, W]`` preprocessed prediction (graph kept; one-hot forward values for ``'one_hot'``)."""
        pred = preds['prediction']
        if pred.dim() != 4 or pred.shape[1] != self.num_channels or tuple(pred.shape[-2:]) != tuple(canvas_hw):
            raise ValueError(f'{type(self).__name__}({self.encoding!r}, channels={self.num_channels}) expects a '
                             f'prediction [B, {self.num_channels}, {canvas_hw[0]}, {canvas_hw[1]}], got '
                             f'{tuple(pred.shape)}; dense rasters live on the image grid (leave canvas_size=None)')
        if self.encoding == 'one_hot':
            return hard_gumbel_one_hot(pred)
        if self.encoding == 'max_scaled':
            return max_scaled(pred)
        return (pred + 1.0) / 2.0

    def labels(self, samples: Sequence, canvas_hw: Tuple[int, int], device: torch.device) -> Tensor:
        """``[B, O, H, W]`` preprocessed labels, no graph; zeros for unlabelled samples."""
        labelled = self.labelled(samples, device)
        out = torch.zeros((len(samples), self.num_channels, *canvas_hw), device=device)
        for b, sample in enumerate(samples):
            if labelled[b]:
                out[b] = self.encode_label(self.ground_truth(sample, b).data.detach().to(device), canvas_hw, b)
        return out

    def encode_label(self, gt: Tensor, canvas_hw: Tuple[int, int], index: int) -> Tensor:
        """One sample's pixel labels -> ``[O, H, W]`` float (``index`` names the sample in errors)."""
        expected = (1 if self.encoding == 'one_hot' else self.num_channels, *canvas_hw)
        if tuple(gt.shape) != expected:
            raise ValueError(f'sample {index}: {self.gt_field} must be {expected} for {self.encoding!r}, got '
                             f'{tuple(gt.shape)}')
        if self.encoding == 'one_hot':
            classes = gt[0].long()
            valid = classes != self.ignore_index
            if valid.any() and not 0 <= int(classes[valid].min()) <= int(classes[valid].max()) < self.num_channels:
                raise ValueError(f'sample {index}: {self.gt_field} classes must lie in [0, {self.num_channels}) or '
                                 f'be {self.ignore_index}, got values {classes.unique().tolist()[:20]}')
            one_hot = F.one_hot(torch.where(valid, classes, torch.zeros_like(classes)), self.num_channels)
            return (one_hot * valid[..., None]).permute(2, 0, 1).float()
        if self.encoding == 'max_scaled':
            return max_scaled(gt[None].float())[0]
        return (gt.float() + 1.0) / 2.0
