"""UniAD stage-1 (track + map) on mmengine: image backbone -> BEVFormer encoder -> TrackFormer + MapFormer.

The detector only wires the parts together; every part is built from the registry and swappable by config.
``bev`` (``[B, H*W, C]``) from ``bev_encoder`` is the one place where the task heads receive the shared
representation; plug-ins (NexusFlow, MTPSL, JTR) read features through forward hooks and add loss terms.
"""
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.model import BaseModel, ModuleList

from mmdet3d.registry import MODELS
from ...core.frames import lidar2global_of, relative_pose
from ...core.freeze import freeze_modules
from .temporal_state import TemporalState

HISTORY_MODES = ('reuse', 'recompute')
COMPAT_MODES = (None, 'uniad')


@contextmanager
def eval_mode(module: torch.nn.Module):
    """Put ``module`` and all its children in eval mode, then restore each child's own previous mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def with_compat(cfg: dict, compat: Optional[str]) -> dict:
    """``cfg`` with ``compat`` as the default of its own ``compat`` (unchanged when ``compat`` is ``None``)."""
    return dict(cfg, compat=cfg.get('compat', compat)) if compat is not None else cfg


@MODELS.register_module()
class UniADTrackMap(BaseModel):
    """Camera-only tracking and online mapping from a shared temporal BEV.

    Args:
        img_backbone (dict): image backbone config (e.g. ``mmdet.ResNet``).
        img_neck (dict): neck config (e.g. ``mmdet.FPN``) producing ``num_feature_levels`` maps.
        bev_encoder (dict): BEV encoder config (``BEVFormerEncoder``).
        track_head (dict, optional): ``UniADTrackHead`` config; ``None`` trains mapping only.
        map_head (dict, optional): ``UniADMapHead`` config; ``None`` trains tracking only.
        plugins (list[dict], optional): plug-ins built from MODELS that tap features through forward hooks
            and return extra losses (NexusFlow, MTPSL, JTR). They never change what the baseline computes.
        history_bev (str): how a training clip gets each frame's previous BEV. ``'recompute'`` is UniAD's behaviour:
            frame ``f`` re-runs backbone and encoder over frames ``0..f-1`` without gradients in eval mode.
            ``'reuse'`` takes frame ``f-1``'s BEV of the same pass, detached: one encoder pass per frame.
        compat (str, optional): ``'uniad'`` for the behaviours the official UniAD weights rely on: in training the
            first frame of a clip takes its own history-free BEV (no gradients, eval mode) as previous BEV with
            zero motion, as UniAD's ``prev_img = img[:, :1]``; and the ``compat`` of the BEV encoder and of the map
            head (its 4-level map-transformer attentions and ReLU masks) defaults to it.
            Exact UniAD training also needs ``history_bev='recompute'``. ``None`` (default): frame 0 has no history.
        task_loss_weights (dict): multiplies every loss of a task, e.g. ``dict(track=1.0, map=1.0)``.
        grid_mask (dict, optional): ``GridMask`` config applied to the training images.
        nan_check (bool): raise ``FloatingPointError`` naming the loss when any loss is NaN or infinite.
        frozen_modules (Sequence[str]): dotted module prefixes frozen at build time (``requires_grad=False``), e.g.
            ``['img_backbone', 'img_neck', 'bev_encoder']`` for phase-2 fine-tuning. Freezing here, before the
            Runner wraps the model in DDP, is what keeps DDP working without ``find_unused_parameters``; pair it
            with ``FreezeModulesHook`` to keep the frozen norm layers in eval mode.
        data_preprocessor (dict, optional): ``TrackMapDataPreprocessor`` config.
    """

    def __init__(self, img_backbone: dict, img_neck: dict, bev_encoder: dict, track_head: Optional[dict] = None,
                 map_head: Optional[dict] = None, plugins: Optional[Sequence[dict]] = None,
                 history_bev: str = 'reuse', task_loss_weights: Optional[Dict[str, float]] = None,
                 grid_mask: Optional[dict] = None, nan_check: bool = True, frozen_modules: Sequence[str] = (),
                 data_preprocessor: Optional[dict] = None, compat: Optional[str] = None, init_cfg=None):
        if isinstance(data_preprocessor, dict):  # build from the mmdet3d registry, whatever the default scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if history_bev not in HISTORY_MODES:
            raise ValueError(f'history_bev must be one of {HISTORY_MODES}, got {history_bev!r}')
        if track_head is None and map_head is None:
            raise ValueError('UniADTrackMap needs at least one of track_head and map_head')
        if compat not in COMPAT_MODES:
            raise ValueError(f'UniADTrackMap: compat must be one of {COMPAT_MODES}, got {compat!r}')
        self.compat = compat
        self.img_backbone = MODELS.build(img_backbone)
        self.img_neck = MODELS.build(img_neck)
        self.bev_encoder = MODELS.build(with_compat(bev_encoder, compat))
        self.track_head = MODELS.build(track_head) if track_head is not None else None
        self.map_head = MODELS.build(with_compat(map_head, compat)) if map_head is not None else None
        self.grid_mask = MODELS.build(grid_mask) if grid_mask is not None else None
        self.history_bev = history_bev
        self.task_loss_weights = dict(track=1.0, map=1.0, **(task_loss_weights or {}))
        self.nan_check = nan_check
        self.plugins = ModuleList([MODELS.build(cfg) for cfg in plugins or []])
        for plugin in self.plugins:
            plugin.attach(self)
        freeze_modules(self, frozen_modules)
        self.test_state = TemporalState()

    # ------------------------------------------------------------------ features
    def extract_img_feats(self, imgs: torch.Tensor) -> List[torch.Tensor]:
        """Multi-view image features.

        Args:
            imgs: ``[B, N, 3, H, W]`` normalised, padded images of N cameras.

        Returns:
            list of ``[B, N, C, h_l, w_l]`` neck outputs, one per feature level.
        """
        batch, num_cams = imgs.shape[:2]
        flat = imgs.flatten(0, 1)
        if self.grid_mask is not None and self.training:
            flat = self.grid_mask(flat)
        feats = self.img_neck(self.img_backbone(flat))
        return [f.view(batch, num_cams, *f.shape[1:]) for f in feats]

    def frame_bev(self, imgs: torch.Tensor, metas: List[dict], prev_bev: Optional[torch.Tensor] = None,
                  prev2cur: Optional[torch.Tensor] = None) -> torch.Tensor:
        """BEV of one frame: ``imgs [B, N, 3, H, W]`` -> ``[B, H_bev * W_bev, C]``."""
        return self.bev_encoder(self.extract_img_feats(imgs), metas, prev_bev=prev_bev, prev2cur=prev2cur)

    def clip_bevs(self, imgs: torch.Tensor, metas: List[List[dict]]) -> List[torch.Tensor]:
        """BEVs of every frame of a training clip, each with gradients.

        Args:
            imgs: ``[B, Q, N, 3, H, W]``.
            metas: ``Q`` lists of ``B`` metainfo dicts (frame-major).

        Returns:
            ``Q`` tensors ``[B, H_bev * W_bev, C]``; frame ``f`` is encoded with frame ``f-1`` as history (frame 0
            with its own history-free BEV and identity motion under ``compat='uniad'``).
        """
        num_frames = imgs.shape[1]
        first = None
        if self.compat == 'uniad':
            first = torch.eye(4, device=imgs.device).expand(imgs.shape[0], 4, 4).contiguous()
        prev2cur = [first] + [self._prev2cur(metas[f - 1], metas[f], imgs.device) for f in range(1, num_frames)]
        bevs = []
        for f in range(num_frames):
            if f == 0:
                prev = self._history_bev(imgs[:, :1], metas[:1], [None]) if self.compat == 'uniad' else None
            elif self.history_bev == 'reuse':
                prev = bevs[-1].detach()
            else:
                prev = self._history_bev(imgs[:, :f], metas[:f], [None] + prev2cur[1:f])
            bevs.append(self.frame_bev(imgs[:, f], metas[f], prev, prev2cur[f]))
            if self.nan_check and not torch.isfinite(bevs[-1]).all():
                raise FloatingPointError(
                    f'the BEV of frame {f} holds NaN/inf (input images finite: {bool(torch.isfinite(imgs).all())}): '
                    'training diverged or the inputs are corrupt. Lower the learning rate, keep gradient clipping '
                    'on, check the data, or set model.nan_check=False to let it pass.')
        return bevs

    @torch.no_grad()
    def _history_bev(self, imgs: torch.Tensor, metas: List[List[dict]], prev2cur: List) -> torch.Tensor:
        """UniAD's history pass: frames ``0..k-1`` encoded in order, without gradients, in eval mode."""
        prev = None
        with eval_mode(self):
            for f in range(imgs.shape[1]):
                prev = self.frame_bev(imgs[:, f], metas[f], prev, prev2cur[f])
        return prev

    @staticmethod
    def _prev2cur(prev_metas: List[dict], metas: List[dict], device) -> torch.Tensor:
        mats = [relative_pose(lidar2global_of(p), lidar2global_of(c)) for p, c in zip(prev_metas, metas)]
        return torch.from_numpy(np.stack(mats)).float().to(device)

    # ------------------------------------------------------------------ training
    def loss(self, inputs: dict, data_samples: List[list]) -> Dict[str, torch.Tensor]:
        """Losses of a batch of clips.

        Args:
            inputs: ``{'imgs': [B, Q, N, 3, H, W]}`` from ``TrackMapDataPreprocessor``.
            data_samples: ``B`` lists of ``Q`` ``Det3DDataSample`` (frame order); the per-sample flags
                ``has_track_gt`` / ``has_map_gt`` gate the task losses inside the heads.

        Returns:
            dict of scalar losses prefixed ``track.``, ``map.`` and ``<plugin name>.``.
        """
        frames = [list(frame) for frame in zip(*data_samples)]
        metas = [[s.metainfo for s in frame] for frame in frames]
        bevs = self.clip_bevs(inputs['imgs'], metas)
        losses = {}
        if self.track_head is not None:
            losses.update(self._task_losses('track', self.track_head.loss(bevs, frames)))
        if self.map_head is not None:
            losses.update(self._task_losses('map', self.map_head.loss(bevs[-1], frames[-1])))
        for plugin in self.plugins:
            prefix = type(plugin).__name__.lower()
            losses.update({f'{prefix}.{k}': v for k, v in plugin.loss(frames[-1]).items()})
        if self.nan_check:
            self._check_finite(losses)
        return losses

    def _task_losses(self, task: str, losses: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        weight = self.task_loss_weights[task]
        return {f'{task}.{k}': v * weight if 'loss' in k else v for k, v in losses.items()}

    @staticmethod
    def _check_finite(losses: Dict[str, torch.Tensor]):
        for name, value in losses.items():
            if 'loss' in name and isinstance(value, torch.Tensor) and not torch.isfinite(value).all():
                raise FloatingPointError(
                    f'loss {name!r} is {value.detach().float().cpu().tolist()}: training diverged or the inputs '
                    'hold NaN/inf. Lower the learning rate, keep gradient clipping on (optim_wrapper.clip_grad), '
                    'check the data with tools/benchmark_data.py, or set model.nan_check=False to let it pass.')

    # ------------------------------------------------------------------ inference
    def predict(self, inputs: dict, data_samples: List[list]) -> list:
        """Sequential inference on the current frame of each of B independent streams.

        Cross-frame state lives in ``self.test_state`` and is reset per stream when its scene changes. The B
        samples of a batch must come from B different scenes (a test batch of consecutive frames of one scene
        would run them in parallel without history), which the default test config guarantees with batch size 1
        and ``SceneAwareSampler``.

        Returns:
            ``B`` ``Det3DDataSample`` (the current frames) with ``pred_instances_3d`` (``bboxes_3d``, ``scores_3d``,
            ``labels_3d``, ``instance_ids``) and ``pred_map`` (``dict(masks=bool [4, H, W])``, ...).
        """
        imgs = inputs['imgs']
        if imgs.shape[1] != 1:
            raise ValueError(f'predict() runs one frame per stream, got clips of {imgs.shape[1]} frames; '
                             'set the test dataset queue_length to 1')
        samples = [clip[-1] for clip in data_samples]
        metas = [s.metainfo for s in samples]
        tokens = [m['scene_token'] for m in metas]
        if len(set(tokens)) != len(tokens):
            raise ValueError('a test batch holds several frames of one scene; sequential inference needs '
                             'batch_size=1 with SceneAwareSampler (or one scene per batch slot)')
        state = self._advance_state(tokens, imgs.device)
        new_scene = state.new_scene_mask(tokens)
        prev2cur = state.prev2cur(metas, new_scene).to(imgs.device)
        bev = self.frame_bev(imgs[:, 0], metas, state.prev_bev, prev2cur)
        if self.track_head is not None:
            for b, new in enumerate(new_scene):
                if new:
                    state.track_state.reset(b)
            tracks, state.track_state = self.track_head.predict(bev, state.track_state, metas)
            for sample, instances in zip(samples, tracks):
                sample.pred_instances_3d = instances
        if self.map_head is not None:
            for sample, result in zip(samples, self.map_head.predict(bev, samples)):
                sample.pred_map = result
        state.scene_tokens = tokens
        state.lidar2global = [lidar2global_of(m) for m in metas]
        state.prev_bev = bev
        return samples

    def _advance_state(self, tokens: List[str], device) -> TemporalState:
        """The test state, re-created when the number of streams changes."""
        if self.test_state.batch_size != len(tokens):
            track_state = self.track_head.init_state(len(tokens), device) if self.track_head is not None else None
            self.test_state = TemporalState(scene_tokens=[None] * len(tokens), lidar2global=[None] * len(tokens),
                                            track_state=track_state)
        return self.test_state

    def reset_test_state(self):
        """Forget every stream (e.g. before evaluating another split)."""
        self.test_state = TemporalState()

    def _forward(self, inputs: dict, data_samples: List[list]) -> List[torch.Tensor]:
        """Tensor mode: the BEV of every frame of the clips, ``Q`` tensors ``[B, H*W, C]``."""
        frames = [list(frame) for frame in zip(*data_samples)]
        return self.clip_bevs(inputs['imgs'], [[s.metainfo for s in frame] for frame in frames])

    def forward(self, inputs: dict, data_samples: Optional[List[list]] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
