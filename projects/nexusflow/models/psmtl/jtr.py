"""``JTR`` (Nishi, Kim, Li, Pfister, CVPR'24): joint-task regularisation in one latent space, on UniAD's BEV.

All tasks are rendered on the map canvas (``task_rasters.py``) and stacked along the channels:
``Y^`` = the predictions of every task, those of labelled tasks detached (JTR gradients reach unlabelled heads
only); ``Y`` = the labels where the sample has them, the predictions elsewhere. With ``g1`` the encoder of a
joint-task auto-encoder (``joint_autoencoder.py``) and the cosine over channels averaged over the latent cells:

    ``d_pred = 1 - cos(g1'(Y), g1'(Y^))``, ``g1'`` = ``g1`` with detached parameters: trains the heads only;
    ``d_enc  = 1 - cos(g1(<Y>), g1(<Y^>))`` on detached inputs: trains the encoder only;
    ``L_recon = BCE(g(<Y>), <Y>) + BCE(g(<Y^>), <Y^>)``, per task summed over its channels, mean over the cells;

    ``loss = dist_weight * (d_pred + encoder_dist_weight * d_enc) + recon_weight * L_recon``, batch mean,

with the official ``dist_weight = 4``, ``recon_weight = 2`` and ``encoder_dist_weight = 2`` (the official
``compute_losses`` weights its encoder-training distance with the reconstruction weight it receives). Every sample
contributes (a sample without any label has ``Y = Y^`` and a zero distance).

Changed from the official code: one view for both terms instead of two random crops; rasters are independent
per-channel probabilities, so no Gumbel sampling and BCE for every task (the official code uses BCE for the
segmentation, L1 and cosine reconstructions for depth and normals); no valid-pixel masks (BEV labels have no
ignore cells); the frozen copy is a functional call instead of ``copy.deepcopy``; batched (exact with the default
instance norms).
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet3d.registry import MODELS
from .raster_plugin import RasterPlugin, TaskRasters, cosine_distance


@MODELS.register_module('NexusFlowJTR')
class JTR(RasterPlugin):
    """The JTR plug-in.

    Example (UniAD, tiny sizes)::

        dict(type='NexusFlowJTR', autoencoder=dict(channels=(32, 64, 128)),
             tasks=dict(track=dict(tap='track_head.pred_tap', raster=dict(type='NexusFlowTrackRaster', num_classes=10)),
                        map=dict(tap='map_head.pred_tap', raster=dict(type='NexusFlowMapRaster', num_classes=4))))

    Args:
        tasks (dict[str, dict]): ``N >= 2`` tasks, name -> ``dict(tap=<head pred_tap path>, raster=<TASK_UTILS
            raster config>)``; their order is the channel order of the stacked rasters.
        autoencoder (dict): :class:`JointTaskAutoEncoder` arguments other than ``in_channels``.
        dist_weight (float): ``c_dist`` (official 4).
        recon_weight (float): ``c_recon`` (official 2).
        encoder_dist_weight (float): weight of ``d_enc`` inside the distance term (official 2).
        canvas_size (tuple[int, int], optional): raster canvas; ``None`` = the map GT canvas of the batch.
        seed (int): the plug-in's parameters are drawn from this seed in a forked RNG (global RNG untouched).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, tasks: Dict[str, dict], autoencoder: dict = dict(channels=(64, 128, 256)),
                 dist_weight: float = 4.0, recon_weight: float = 2.0, encoder_dist_weight: float = 2.0,
                 canvas_size: Optional[Tuple[int, int]] = None, seed: int = 0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks, canvas_size=canvas_size, init_cfg=init_cfg)
        self.dist_weight, self.recon_weight = float(dist_weight), float(recon_weight)
        self.encoder_dist_weight = float(encoder_dist_weight)
        self.task_channels = [self.rasters[name].channels for name in self.task_names]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.autoencoder = MODELS.build(dict(type='NexusFlowJointTaskAutoEncoder',
                                                 in_channels=sum(self.task_channels), **autoencoder))

    def stack(self, rasters: Dict[str, TaskRasters]) -> Tuple[Tensor, Tensor]:
        """``(Y, Y^)``, each ``[B, sum O_t, H, W]`` in task order (see the module docstring)."""
        targets, predictions = [], []
        for name in self.task_names:
            raster = rasters[name]
            labelled = raster.labelled[:, None, None, None]
            predictions.append(torch.where(labelled, raster.predictions.detach(), raster.predictions))
            targets.append(torch.where(labelled, raster.labels, raster.predictions))
        return torch.cat(targets, dim=1), torch.cat(predictions, dim=1)

    def recon_loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Per-entry reconstruction loss ``[N]``: BCE-with-logits summed over each task's channels, averaged over
        the cells, summed over the tasks (``logits``, ``targets``: ``[N, sum O_t, H, W]``; targets in ``[0, 1]``)."""
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
        return sum(part.sum(1).flatten(1).mean(1) for part in bce.split(self.task_channels, dim=1))

    def terms(self, targets: Tensor, predictions: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Per-sample ``d_pred``, ``d_enc`` and ``L_recon`` (each ``[B]``, see the module docstring).

        Args:
            targets (Tensor): ``Y`` ``[B, sum O_t, H, W]`` float in ``[0, 1]``.
            predictions (Tensor): ``Y^``, same shape.
        """
        batch = targets.shape[0]
        stacked = torch.cat([targets, predictions])
        dist_pred = cosine_distance(*self.autoencoder.encode_frozen(stacked).split(batch))
        latent, logits = self.autoencoder(stacked.detach())
        recon = self.recon_loss(logits, stacked.detach()).view(2, batch).sum(0)
        return dist_pred, cosine_distance(*latent.split(batch)), recon

    def loss(self, data_samples: list) -> Dict[str, Tensor]:
        """JTR loss of the last forward; the stored tap outputs are released afterwards.

        Args:
            data_samples (list[Det3DDataSample]): the ``B`` samples of the frame the heads ran last, with labels
                and the ``has_track_gt`` / ``has_map_gt`` flags.

        Returns:
            dict[str, Tensor]: ``loss_dist`` = ``dist_weight * (d_pred + encoder_dist_weight * d_enc)`` and
            ``loss_recon`` = ``recon_weight * L_recon`` (batch means, scalars); logging only: ``dist_pred``,
            ``dist_enc``.
        """
        try:
            rasters = self.task_rasters(data_samples)
        finally:
            self.clear()
        dist_pred, dist_enc, recon = self.terms(*self.stack(rasters))
        return dict(loss_dist=self.dist_weight * (dist_pred + self.encoder_dist_weight * dist_enc).mean(),
                    loss_recon=self.recon_weight * recon.mean(),
                    dist_pred=dist_pred.detach().mean(), dist_enc=dist_enc.detach().mean())
