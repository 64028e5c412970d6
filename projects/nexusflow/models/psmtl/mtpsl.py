"""``MTPSL`` (Li, Liu, Bilen, CVPR'22): cross-task consistency in joint task-pair spaces, on UniAD and on MTAN.

Every task is rendered on one canvas: the BEV canvas on UniAD (``task_rasters.py``), the image on NYUv2 with MTPSL's
official input preprocessing (``dense_raster.py``). For every sample, every task ``s`` it lacks labels for (source)
and every task ``t`` it has labels for (target), a task-pair-conditioned mapping network ``m`` (``pair_mapper.py``)
maps the source prediction raster and the target label raster into the joint space of ``(s, t)``, both with the
same pair code (as the official code does), and

    ``l_st = 1 - cos(m(y^_s), m(y_t))``                                           (consistency)
    ``r_st = (1 - cos(m(y^_s), feat)) + (1 - cos(m(y_t), feat))``, ``feat`` detached   (regulariser)

with the cosine over channels, averaged over the positions; ``feat`` is the shared feature map of the same forward:
the BEV encoder output on UniAD, the encoder bottleneck on MTAN (the official choice, ``m`` pools down to its
resolution). The loss is ``con_weight * sum_(pairs) [l_st + reg_weight * r_st] / B`` with the official
``con_weight = 2``, ``reg_weight = 0.5`` (the official script parses ``--reg-weight`` but always uses 0.5). Gradients
reach the source head through ``m(y^_s)``; labels and ``feat`` get none. Samples with both labels or none form no
pair (the official partial-label rule), so a fully supervised batch gives an exact zero that still touches every
parameter (DDP).

Changed from the official code: one view (the official code compares the predictions and labels of a second random
crop of the image; the plug-in reads the host's one forward); on UniAD the task rasters are independent per-channel
probabilities, so the source prediction enters as is; batched over samples and pairs (exact with the default
instance norms, see ``film.py``). The official FiLM parameters train with a 10x learning rate and their own Adam: the
configs give ``film_`` parameters ``lr_mult=10`` and no weight decay (Adam is per parameter, so this equals a second
Adam; the official second StepLR, step 30, is not reproduced: the FiLM learning rate follows the model's schedule).
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet3d.registry import MODELS
from .film import pair_codes
from .raster_plugin import RasterPlugin, TaskRasters, cosine_distance

FEATURES = 'features'


@MODELS.register_module('NexusFlowMTPSL')
class MTPSL(RasterPlugin):
    """The MTPSL plug-in.

    Example (UniAD, tiny sizes)::

        dict(type='NexusFlowMTPSL', feat_channels=64,
             feature_tap=dict(module='bev_encoder', kind='bev', bev_shape=(50, 50)),
             tasks=dict(track=dict(tap='track_head.pred_tap', raster=dict(type='NexusFlowTrackRaster', num_classes=10)),
                        map=dict(tap='map_head.pred_tap', raster=dict(type='NexusFlowMapRaster', num_classes=4))))

    Example (MTAN on NYUv2, the official mapping network; ``configs/mtan_nexusflow/_base_/plugins/mtpsl_mtan.py``)::

        dict(type='NexusFlowMTPSL', feat_channels=512,
             feature_tap=dict(module='backbone.encoder_pools.4', kind='feature_map', index=0),
             mapper=dict(channels=segnet_channels(), stage_depths=(2, 2, 3, 3, 3), last_act=True),
             tasks=dict(seg=dict(tap='heads.seg.pred_tap',
                                 raster=dict(type='NexusFlowDenseTaskRaster', encoding='one_hot', channels=13,
                                             flag='has_seg', gt_field='gt_sem_seg')), depth=..., normal=...))

    Args:
        tasks (dict[str, dict]): ``K >= 2`` tasks, name -> ``dict(tap=<head pred_tap path>, raster=<TASK_UTILS
            raster config>)``; their order is the task index of the pair code.
        feature_tap (dict): tap spec of the shared features ``feat`` (a dense kind: ``'bev'`` or
            ``'feature_map'``), by default the BEV encoder output.
        feat_channels (int): channels ``C`` of ``feat``, the mapper's output width.
        mapper (dict): :class:`TaskPairMapper` arguments other than ``in_channels`` / ``out_channels`` (its
            ``stage_depths`` bring the mapped rasters to the resolution of ``feat``; any remaining difference is
            bridged by bilinear resizing).
        con_weight (float): weight of the consistency term (official 2.0).
        reg_weight (float): weight of the regulariser inside it (official 0.5).
        canvas_size (tuple[int, int], optional): raster canvas; ``None`` = the image grid of dense rasters, else
            the map GT canvas of the batch.
        seed (int): the plug-in's parameters are drawn from this seed in a forked RNG (global RNG untouched).
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, tasks: Dict[str, dict],
                 feature_tap: dict = dict(module='bev_encoder', kind='bev', bev_shape=(200, 200)),
                 feat_channels: int = 256, mapper: dict = dict(channels=(64, 64, 128)), con_weight: float = 2.0,
                 reg_weight: float = 0.5, canvas_size: Optional[Tuple[int, int]] = None, seed: int = 0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tasks, feature_taps={FEATURES: feature_tap}, canvas_size=canvas_size, init_cfg=init_cfg)
        self.con_weight, self.reg_weight = float(con_weight), float(reg_weight)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.mapper = MODELS.build(dict(
                type='NexusFlowTaskPairMapper',
                in_channels={name: self.rasters[name].channels for name in self.task_names},
                out_channels=feat_channels, **mapper))

    def features(self) -> Tensor:
        """The detached shared features of the last forward, ``[B, C, H_f, W_f]`` (a BEV tap's row-major
        ``[B, H*W, C]`` reshaped: row ``i`` <-> LiDAR ``y``, column ``j`` <-> LiDAR ``x``, as the canvas; a feature
        map tap as it was)."""
        tap = self.tap(FEATURES)
        if tap.spatial_shape is None:
            raise ValueError(f'the MTPSL feature tap must be dense (kind "bev" or "feature_map"), got a query set '
                             f'of shape {tuple(tap.features.shape)}')
        return tap.features.detach().transpose(1, 2).reshape(tap.features.shape[0], -1, *tap.spatial_shape)

    def pairs(self, rasters: Dict[str, TaskRasters]) -> Tuple[List[int], List[int], List[int]]:
        """``(sample, source task, target task)`` index lists of every unlabelled-source x labelled-target pair,
        sample-major, then in task order."""
        flags = [rasters[name].labelled.tolist() for name in self.task_names]
        found = [(b, s, t) for b in range(len(flags[0])) for s in range(len(flags)) for t in range(len(flags))
                 if not flags[s][b] and flags[t][b]]
        return tuple(list(column) for column in zip(*found)) if found else ([], [], [])

    def pair_distances(self, rasters: Dict[str, TaskRasters], feat: Tensor) -> Tuple[Tensor, Tensor]:
        """Distances of every unlabelled-source x labelled-target pair (:meth:`pairs`, ``P >= 1``).

        Args:
            rasters (dict[str, TaskRasters]): every task's rasters on one canvas (:meth:`task_rasters`).
            feat (Tensor): ``[B, C, H_f, W_f]`` detached shared features (:meth:`features`); the mapped rasters
                are resized bilinearly to ``(H_f, W_f)`` when the mapper's output size differs.

        Returns:
            tuple[Tensor, Tensor]: ``l_st`` ``[P]`` in ``[0, 2]`` and ``r_st`` ``[P]`` in ``[0, 4]`` (see the module
            docstring), in :meth:`pairs` order.
        """
        samples, sources, targets = self.pairs(rasters)
        names = self.task_names
        inputs = ([rasters[names[s]].predictions[b] for b, s in zip(samples, sources)]
                  + [rasters[names[t]].labels[b] for b, t in zip(samples, targets)])
        tasks = [names[s] for s in sources] + [names[t] for t in targets]
        device = feat.device
        codes = pair_codes(torch.tensor(sources, device=device), torch.tensor(targets, device=device), len(names))
        mapped = self.mapper(inputs, tasks, torch.cat([codes, codes]))
        if mapped.shape[1] != feat.shape[1]:
            raise ValueError(f'the mapper outputs {mapped.shape[1]} channels but the features have '
                             f'{feat.shape[1]}: set feat_channels={feat.shape[1]}')
        if mapped.shape[-2:] != feat.shape[-2:]:
            mapped = F.interpolate(mapped, size=tuple(feat.shape[-2:]), mode='bilinear', align_corners=False)
        source, target = mapped.split(len(samples))
        sample_feat = feat[torch.tensor(samples, device=device)]
        return (cosine_distance(source, target),
                cosine_distance(source, sample_feat) + cosine_distance(target, sample_feat))

    def loss(self, data_samples: list) -> Dict[str, Tensor]:
        """MTPSL loss of the last forward; the stored tap outputs are released afterwards.

        Args:
            data_samples (list): the ``B`` samples of the frame the heads ran last, with labels and the label
                flags of the task rasters (UniAD ``has_track_gt`` / ``has_map_gt``, NYUv2 ``has_seg`` / ...).

        Returns:
            dict[str, Tensor]: ``loss_consistency`` = ``con_weight * sum l_st / B`` and ``loss_reg`` =
            ``con_weight * reg_weight * sum r_st / B`` (scalars); logging only: ``num_pairs``.
        """
        try:
            rasters = self.task_rasters(data_samples)
            feat = self.features()
        finally:
            self.clear()
        zero = self.coverage_term()
        num_pairs = len(self.pairs(rasters)[0])
        if num_pairs == 0:
            return dict(loss_consistency=zero, loss_reg=zero.clone(), num_pairs=zero.new_tensor(0.0))
        consistency, reg = self.pair_distances(rasters, feat)
        scale = self.con_weight / len(data_samples)
        return dict(loss_consistency=scale * consistency.sum() + zero,
                    loss_reg=scale * self.reg_weight * reg.sum(),
                    num_pairs=zero.new_tensor(float(num_pairs)))
