"""``MTANMultiTask``: MTAN backbone + one dense head per task as an mmengine model, with plug-ins.

Plug-ins attach exactly as on ``UniADTrackMap``: ``plugins=[dict(type='NexusFlow', tasks=dict(seg=..., depth=...,
normal=...))]`` are built from MODELS, call ``plugin.attach(self)`` (read-only forward hooks on the modules named by
their taps, e.g. ``backbone.decoder_attention.seg.4``) and their ``loss(data_samples)`` is merged into the losses
with the prefix ``<plug-in class name lowercased>.``; the model's outputs are the same with or without them.
"""
from typing import Dict, List, Optional, Sequence

from mmengine.model import BaseModel, ModuleList
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from mmdet3d.registry import MODELS


@MODELS.register_module('NexusFlowMTANMultiTask')
class MTANMultiTask(BaseModel):
    """Multi-task dense prediction on NYUv2 under partial labels.

    Args:
        backbone (dict): ``MTANSegNet`` config (its ``tasks`` must cover the heads).
        heads (dict[str, dict]): task name -> head config (``NYUv2SegHead``, ``NYUv2DepthHead``,
            ``NYUv2NormalHead``); ``in_channels`` defaults to the backbone's ``out_channels``.
        plugins (Sequence[dict], optional): plug-ins built from MODELS (NexusFlow, ...).
        data_preprocessor (dict, optional): data preprocessor config (built from the mmdet3d registry), default
            ``NYUv2DataPreprocessor()``.
        init_cfg (dict, optional): mmengine init config.

    Loss keys: ``<task>.<head loss name>`` (``seg.loss_ce``, ``depth.loss_l1``, ``normal.loss_cos``), then
    ``<plugin>.<key>`` (e.g. ``nexusflow.loss_align``).
    """

    def __init__(self, backbone: dict, heads: Dict[str, dict], plugins: Optional[Sequence[dict]] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        preprocessor = MODELS.build(data_preprocessor or dict(type='NexusFlowNYUv2DataPreprocessor'))
        super().__init__(data_preprocessor=preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        unknown = sorted(set(heads) - set(self.backbone.tasks))
        if not heads or unknown:
            raise ValueError(f'heads must name tasks of the backbone {self.backbone.tasks}, got {sorted(heads)}')
        self.heads = nn.ModuleDict({task: MODELS.build(dict(dict(in_channels=self.backbone.out_channels), **cfg))
                                    for task, cfg in heads.items()})
        self.plugins = ModuleList([MODELS.build(cfg) for cfg in plugins or []])
        for plugin in self.plugins:
            plugin.attach(self)

    def forward(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]] = None, mode: str = 'tensor'):
        """mmengine dispatch: ``'loss'`` -> :meth:`loss`, ``'predict'`` -> :meth:`predict`, ``'tensor'`` ->
        :meth:`_forward`."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def _forward(self, inputs: Tensor, data_samples: Optional[List[BaseDataElement]] = None) -> Dict[str, Tensor]:
        """Predictions of every head.

        Args:
            inputs (Tensor): ``[B, 3, H, W]`` images from the data preprocessor.
            data_samples: unused.

        Returns:
            dict[str, Tensor]: ``seg`` log-probabilities ``[B, 13, H, W]``, ``depth`` ``[B, 1, H, W]`` metres,
            ``normal`` unit vectors ``[B, 3, H, W]`` (camera frame), for the configured heads.
        """
        feats = self.backbone(inputs)
        return {task: head(feats[task]) for task, head in self.heads.items()}

    def loss(self, inputs: Tensor, data_samples: List[BaseDataElement]) -> Dict[str, Tensor]:
        """Masked task losses of a batch plus the plug-ins' losses.

        Args:
            inputs (Tensor): ``[B, 3, H, W]`` images.
            data_samples (list): ``B`` samples with ``gt_sem_seg`` / ``gt_depth`` / ``gt_normal`` and the flags
                ``has_seg`` / ``has_depth`` / ``has_normal`` in their metainfo.

        Returns:
            dict[str, Tensor]: scalar losses (keys in the class docstring).
        """
        preds = self._forward(inputs)
        losses = {}
        for task, head in self.heads.items():
            losses.update({f'{task}.{key}': value for key, value in head.loss(preds[task], data_samples).items()})
        for plugin in self.plugins:
            prefix = type(plugin).__name__.lower()
            losses.update({f'{prefix}.{key}': value for key, value in plugin.loss(data_samples).items()})
        return losses

    def predict(self, inputs: Tensor, data_samples: List[BaseDataElement]) -> List[BaseDataElement]:
        """Attach the predictions to the data samples.

        Returns:
            list[BaseDataElement]: the ``B`` input samples with ``pred_sem_seg`` (``data`` int64 ``[1, H, W]``),
            ``pred_depth`` (``data`` float ``[1, H, W]`` metres), ``pred_normal`` (``data`` float ``[3, H, W]``),
            for the configured heads.
        """
        preds = self._forward(inputs)
        for task, head in self.heads.items():
            for sample, pixel_data in zip(data_samples, head.predict(preds[task])):
                sample.set_field(pixel_data, head.pred_field)
        return data_samples
