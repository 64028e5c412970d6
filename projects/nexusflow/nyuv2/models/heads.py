"""Dense task heads of the NYUv2 model: MTAN's prediction layer (3x3 conv, 1x1 conv) plus a task activation, and
the task losses, masked per pixel (invalid ground truth) and per sample (task label flag).

Every loss follows MTPSL's per-sample loop: ``L = loss_weight * sum_b w_b * l_b / B`` where ``l_b`` is the mean of
the pixel loss over the valid pixels of sample ``b`` (0 if it has none) and ``w_b`` is its label flag
(``has_seg`` / ``has_depth`` / ``has_normal``, default ``True``). An unlabelled sample therefore contributes exactly
zero, the key is always returned and the head's parameters still receive (zero) gradients, so DDP finds no unused
parameter. Pixel losses (MTAN ``utils.model_fit``): seg NLL of the log-softmax, ignore ``-1``; depth L1 where the GT
is non-zero; normal ``1 - <n_pred, n_gt>`` where the GT vector is not all-zero.

Tap point for plug-ins (as on the UniAD heads): every head owns a ``PredictionTap`` ``pred_tap`` that its forward calls
on ``dict(prediction=<the activated prediction it returns>)``; a forward hook on ``heads.<task>.pred_tap`` reads it
(graph kept) without changing any output (MTPSL's ``DenseTaskRaster`` does).
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import BaseDataElement, PixelData
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...core.head_tap import PredictionTap
from ..meta import IGNORE_INDEX, NUM_CLASSES

HEAD_INIT = dict(type='Xavier', distribution='normal', layer='Conv2d')


def masked_sample_mean(pixel_loss: Tensor, valid: Tensor, weights: Tensor) -> Tensor:
    """``sum_b weights_b * mean(pixel_loss_b[valid_b]) / B``, scalar.

    Args:
        pixel_loss (Tensor): ``[B, H, W]`` float (values at invalid pixels are never read, even if NaN).
        valid (Tensor): ``[B, H, W]`` bool.
        weights (Tensor): ``[B]`` float per-sample weights (label flags).
    """
    per_pixel = torch.where(valid, pixel_loss, torch.zeros_like(pixel_loss))
    per_sample = per_pixel.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1).to(pixel_loss.dtype)
    return (weights.to(per_sample) * per_sample).sum() / pixel_loss.shape[0]


class DenseTaskHead(BaseModule):
    """MTAN's prediction layer ``conv1x1(conv3x3(x))`` and a task activation; subclasses set the task.

    Args:
        in_channels (int): channels of the task feature map (``64 * width`` for MTAN).
        out_channels (int): predicted channels.
        loss_weight (float): multiplies the task loss.
        init_cfg (dict): Xavier-normal convolutions as MTAN.
    """
    gt_field = ''  # data-sample field of the ground truth (PixelData)
    flag_key = ''  # metainfo key of the per-sample label flag
    pred_field = ''  # data-sample field that predict() fills
    loss_name = ''  # key of the loss dict

    def __init__(self, in_channels: int, out_channels: int, loss_weight: float = 1.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = HEAD_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_weight = float(loss_weight)
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.pred = nn.Conv2d(in_channels, out_channels, 1)
        self.pred_tap = PredictionTap(fields=('prediction', ))  # plug-in tap point, see the module docstring

    def activate(self, raw: Tensor) -> Tensor:
        """Task activation of the raw prediction; implemented by subclasses."""
        raise NotImplementedError(f'{type(self).__name__} must implement activate()')

    def forward(self, feats: Tensor) -> Tensor:
        """``[B, in_channels, H, W]`` task features -> ``[B, out_channels, H, W]`` activated prediction, also passed
        to ``pred_tap`` as ``dict(prediction=...)``."""
        pred = self.activate(self.pred(self.conv(feats)))
        self.pred_tap(dict(prediction=pred))
        return pred

    def targets(self, samples: List[BaseDataElement]) -> Tensor:
        """Ground truth ``gt_field.data`` of the batch, stacked: ``[B, C, H, W]``."""
        return torch.stack([sample.get(self.gt_field).data for sample in samples])

    def flags(self, samples: List[BaseDataElement], like: Tensor) -> Tensor:
        """Per-sample label flags ``[B]`` float (1 = labelled) from ``metainfo[flag_key]`` (default labelled)."""
        return torch.tensor([float(bool(sample.metainfo.get(self.flag_key, True))) for sample in samples],
                            device=like.device, dtype=like.dtype)

    def pixel_loss(self, pred: Tensor, target: Tensor):
        """``(loss [B, H, W], valid [B, H, W] bool)``; implemented by subclasses."""
        raise NotImplementedError(f'{type(self).__name__} must implement pixel_loss()')

    def loss(self, pred: Tensor, samples: List[BaseDataElement]) -> Dict[str, Tensor]:
        """Masked task loss of a batch (see the module docstring): ``{<loss name>: scalar}``."""
        target = self.targets(samples)
        if target.shape[0] != pred.shape[0] or target.shape[-2:] != pred.shape[-2:]:
            raise ValueError(f'{type(self).__name__}: {self.gt_field} is {tuple(target.shape)}, predictions are '
                             f'{tuple(pred.shape)}; batch and image size must match')
        pixel_loss, valid = self.pixel_loss(pred, target)
        return {self.loss_name: self.loss_weight * masked_sample_mean(pixel_loss, valid, self.flags(samples, pred))}

    def predict(self, pred: Tensor) -> List[PixelData]:
        """Per-sample ``PixelData`` of the prediction (stored as ``pred_field`` of each data sample)."""
        return [PixelData(data=p) for p in pred]


@MODELS.register_module('NexusFlowNYUv2SegHead')
class NYUv2SegHead(DenseTaskHead):
    """13-class segmentation: log-softmax ``[B, 13, H, W]``; loss ``loss_ce`` (NLL, ignore ``-1``); prediction
    ``pred_sem_seg`` (``data`` int64 ``[1, H, W]`` argmax)."""
    gt_field, flag_key, pred_field, loss_name = 'gt_sem_seg', 'has_seg', 'pred_sem_seg', 'loss_ce'

    def __init__(self, in_channels: int = 64, num_classes: int = NUM_CLASSES, loss_weight: float = 1.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = HEAD_INIT) -> None:
        super().__init__(in_channels, num_classes, loss_weight, init_cfg)

    def activate(self, raw: Tensor) -> Tensor:
        return F.log_softmax(raw, dim=1)

    def pixel_loss(self, pred: Tensor, target: Tensor):
        labels = target[:, 0].long()
        return F.nll_loss(pred, labels, ignore_index=IGNORE_INDEX, reduction='none'), labels != IGNORE_INDEX

    def predict(self, pred: Tensor) -> List[PixelData]:
        return super().predict(pred.argmax(dim=1, keepdim=True))


@MODELS.register_module('NexusFlowNYUv2DepthHead')
class NYUv2DepthHead(DenseTaskHead):
    """Metric depth ``[B, 1, H, W]`` (metres, unconstrained as MTAN); loss ``loss_l1`` on GT depth != 0;
    prediction ``pred_depth`` (``data`` float ``[1, H, W]``)."""
    gt_field, flag_key, pred_field, loss_name = 'gt_depth', 'has_depth', 'pred_depth', 'loss_l1'

    def __init__(self, in_channels: int = 64, loss_weight: float = 1.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = HEAD_INIT) -> None:
        super().__init__(in_channels, 1, loss_weight, init_cfg)

    def activate(self, raw: Tensor) -> Tensor:
        return raw

    def pixel_loss(self, pred: Tensor, target: Tensor):
        return (pred - target).abs()[:, 0], target[:, 0] != 0


@MODELS.register_module('NexusFlowNYUv2NormalHead')
class NYUv2NormalHead(DenseTaskHead):
    """Surface normals: L2-normalised ``[B, 3, H, W]`` (camera frame); loss ``loss_cos`` = ``1 - cos`` where the
    GT vector is not all-zero; prediction ``pred_normal`` (``data`` float ``[3, H, W]``, unit vectors)."""
    gt_field, flag_key, pred_field, loss_name = 'gt_normal', 'has_normal', 'pred_normal', 'loss_cos'

    def __init__(self, in_channels: int = 64, loss_weight: float = 1.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = HEAD_INIT) -> None:
        super().__init__(in_channels, 3, loss_weight, init_cfg)

    def activate(self, raw: Tensor) -> Tensor:
        return F.normalize(raw, p=2, dim=1)

    def pixel_loss(self, pred: Tensor, target: Tensor):
        return 1.0 - (pred * target).sum(dim=1), target.abs().sum(dim=1) > 0
