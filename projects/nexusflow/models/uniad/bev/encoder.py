"""BEVFormer encoder of the UniAD stage-1 baseline: multi-camera FPN features (+ previous BEV) -> BEV features.

Follows BEVFormer's ``PerceptionTransformer.get_bev_features`` + ``BEVFormerEncoder`` (OpenDriveLab/BEVFormer, as
used by UniAD stage 1): learned BEV queries and positional encoding, camera and level embeddings, the CAN-bus MLP,
``num_layers`` of (TSA, norm, SCA, norm, FFN, norm). What changed: one module owns all of it and takes the metas
directly; batch-first ``[B, H*W, C]`` in and out; any batch size; the previous BEV is aligned by the exact ego motion
``prev2cur`` (see ``temporal_self_attention.py``) and the CAN-bus motion slots are derived from it (see
``_can_bus_signal``); optional activation checkpointing per layer. ``compat='uniad'`` restores BEVFormer's own
behaviour where the official weights depend on it (``uniad_compat.py``): CAN-bus deltas in the global frame, the
previous BEV rotated by the yaw change and the TSA grid shifted by the displacement, the layer-0 queries as the
current TSA queue.
"""
from typing import List, Optional, Sequence

import torch
from mmdet.models.layers import LearnedPositionalEncoding
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mmdet3d.registry import MODELS
from ...layers import xavier_linear_
from ...ops import level_start_index_of, single_level_shapes
from .encoder_layer import BEVFormerLayer
from .geometry import (bev_cell_centres, bev_xy_to_unit, check_pc_range, pillar_points, prev_bev_reference_points,
                       project_to_cameras, relative_yaw)
from .metas import image_sizes, input_sizes, stack_can_bus, stack_lidar2img
from .spatial_cross_attention import CameraContext, rebatch_camera_hits
from .temporal_self_attention import TemporalContext, sample_bev
from .uniad_compat import COMPAT_MODES, rotate_bev_nearest, uniad_ego_motion, uniad_reference_shift

CAN_BUS_DIMS = 18


@MODELS.register_module('UniADBEVFormerEncoder')
class BEVFormerEncoder(BaseModule):
    """BEVFormer encoder: ``forward(mlvl_feats, img_metas, prev_bev, prev2cur) -> [B, bev_h * bev_w, C]``.

    Args:
        bev_h (int): BEV rows (LiDAR y).
        bev_w (int): BEV columns (LiDAR x).
        embed_dims (int): channels ``C`` of the BEV and of the FPN features; even.
        num_layers (int): encoder layers.
        num_cams (int): cameras ``N`` per sample.
        num_feature_levels (int): FPN levels fed to SCA.
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max, y_max, z_max)`` metres, LiDAR frame.
        num_points_in_pillar (int): pillar heights ``D`` projected into the cameras per BEV cell.
        num_heads (int): heads of both attentions.
        tsa_num_points (int): TSA sampling points per head and queue.
        sca_num_points (int): SCA sampling points per head and level over all ``D`` heights (BEVFormer's
            ``num_points=8``: 2 per height); a multiple of ``num_points_in_pillar``.
        ffn_dims (int): FFN hidden channels.
        dropout (float): dropout of attentions and FFN.
        use_can_bus (bool): add the CAN-bus MLP embedding to the BEV queries.
        use_cams_embeds (bool): add a learned embedding per camera to its features.
        with_cp (bool): activation checkpointing of every layer when gradients are enabled (saves memory,
            costs one more forward pass per layer in backward).
        use_cuda_kernel (bool): use mmcv's deformable-attention kernel on CUDA tensors.
        compat (str, optional): ``None`` (this project's exact alignment) or ``'uniad'`` (BEVFormer's CAN-bus
            deltas, rotated previous BEV, shifted TSA grid and layer-0 current queue, for the official weights).
        init_cfg (dict, optional): mmengine init config (e.g. ``Pretrained``).
    """

    def __init__(self, bev_h: int = 200, bev_w: int = 200, embed_dims: int = 256, num_layers: int = 6,
                 num_cams: int = 6, num_feature_levels: int = 4,
                 point_cloud_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
                 num_points_in_pillar: int = 4, num_heads: int = 8, tsa_num_points: int = 4,
                 sca_num_points: int = 8, ffn_dims: int = 512, dropout: float = 0.1, use_can_bus: bool = True,
                 use_cams_embeds: bool = True, with_cp: bool = False, use_cuda_kernel: bool = True,
                 compat: Optional[str] = None, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if embed_dims % 2 != 0:
            raise ValueError(f'embed_dims must be even (rows + columns positional encoding), got {embed_dims}')
        if compat not in COMPAT_MODES:
            raise ValueError(f'BEVFormerEncoder: compat must be one of {COMPAT_MODES}, got {compat!r}')
        self.compat = compat
        self.bev_h, self.bev_w, self.embed_dims = bev_h, bev_w, embed_dims
        self.num_cams, self.num_feature_levels = num_cams, num_feature_levels
        self.pc_range = check_pc_range(point_cloud_range)
        self.num_points_in_pillar = num_points_in_pillar
        self.with_cp, self.use_cuda_kernel = with_cp, use_cuda_kernel
        self.bev_queries = nn.Embedding(bev_h * bev_w, embed_dims)
        self.positional_encoding = LearnedPositionalEncoding(embed_dims // 2, row_num_embed=bev_h,
                                                             col_num_embed=bev_w)
        self.level_embeds = nn.Parameter(torch.empty(num_feature_levels, embed_dims))
        self.register_parameter('cams_embeds',
                                nn.Parameter(torch.empty(num_cams, embed_dims)) if use_cams_embeds else None)
        self.can_bus_mlp = nn.Sequential(
            nn.Linear(CAN_BUS_DIMS, embed_dims // 2), nn.ReLU(inplace=True), nn.Linear(embed_dims // 2, embed_dims),
            nn.ReLU(inplace=True), nn.LayerNorm(embed_dims)) if use_can_bus else None
        self.layers = nn.ModuleList(
            BEVFormerLayer(embed_dims, num_heads, num_feature_levels, num_points_in_pillar, tsa_num_points,
                           sca_num_points, ffn_dims, dropout, use_cuda_kernel) for _ in range(num_layers))
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """BEVFormer's init: N(0, 1) queries and embeddings, U(0, 1) positions, xavier CAN-bus MLP."""
        nn.init.normal_(self.bev_queries.weight)
        nn.init.uniform_(self.positional_encoding.row_embed.weight)
        nn.init.uniform_(self.positional_encoding.col_embed.weight)
        nn.init.normal_(self.level_embeds)
        if self.cams_embeds is not None:
            nn.init.normal_(self.cams_embeds)
        if self.can_bus_mlp is not None:
            for module in self.can_bus_mlp:
                if isinstance(module, nn.Linear):
                    xavier_linear_(module)

    def forward(self, mlvl_feats: List[Tensor], img_metas: List[dict], prev_bev: Optional[Tensor] = None,
                prev2cur: Optional[Tensor] = None) -> Tensor:
        """Encode one frame of ``B`` samples into BEV features.

        Args:
            mlvl_feats (list[Tensor]): ``num_feature_levels`` FPN outputs ``[B, N, C, h_l, w_l]`` of the ``N``
                cameras, covering the padded input image ``batch_input_shape``.
            img_metas (list[dict]): ``B`` metas with ``lidar2img`` (``[N, 4, 4]`` ndarray or Tensor, LiDAR ->
                input-image pixels), ``batch_input_shape`` (``(H_pad, W_pad)``), ``can_bus`` (18 floats, needed
                when ``use_can_bus``) and optionally ``img_shape`` (unpadded ``(H, W)``, bounds the visibility).
            prev_bev (Tensor, optional): ``[B, bev_h * bev_w, C]`` previous frame's BEV in its own LiDAR frame.
            prev2cur (Tensor, optional): ``[B, 4, 4]`` maps points of the previous LiDAR frame into the current
                one. A sample whose matrix is all zeros, or every sample when either argument is ``None``, has no
                history: its TSA uses the current queries twice (BEVFormer's first frame).

        Returns:
            Tensor: ``[B, bev_h * bev_w, C]`` BEV features, batch-first, row-major (row ``i`` <-> LiDAR y,
            column ``j`` <-> LiDAR x, see the grid contract in ``projects/nexusflow/README.md``).
        """
        batch = self._check_inputs(mlvl_feats, img_metas, prev_bev, prev2cur)
        device = mlvl_feats[0].device
        geo_dtype = torch.promote_types(mlvl_feats[0].dtype, torch.float32)
        has_history = self._history_mask(batch, prev_bev, prev2cur, device)
        query = self._initial_queries(img_metas, prev2cur, has_history)
        query_pos = self._positional_encoding(batch)
        camera = self._camera_context(mlvl_feats, img_metas, geo_dtype)
        if self.compat == 'uniad':
            temporal = self._uniad_temporal_context(img_metas, prev_bev, prev2cur, has_history, query, geo_dtype)
        else:
            temporal = self._temporal_context(prev_bev, prev2cur, has_history, geo_dtype)
        for layer in self.layers:
            if self.with_cp and torch.is_grad_enabled():
                query = checkpoint(layer, query, query_pos, temporal, camera, use_reentrant=False)
            else:
                query = layer(query, query_pos, temporal, camera)
        return query

    def _check_inputs(self, mlvl_feats, img_metas, prev_bev, prev2cur) -> int:
        """Raise ``ValueError`` / ``TypeError`` on inputs that break the contract; return the batch size."""
        if not isinstance(mlvl_feats, (list, tuple)) or len(mlvl_feats) != self.num_feature_levels:
            raise ValueError(f'mlvl_feats must be a list of num_feature_levels={self.num_feature_levels} tensors, '
                             f'got {type(mlvl_feats).__name__} of length {len(mlvl_feats)}')
        batch = mlvl_feats[0].shape[0]
        for level, feat in enumerate(mlvl_feats):
            if feat.dim() != 5 or tuple(feat.shape[:3]) != (batch, self.num_cams, self.embed_dims):
                raise ValueError(f'mlvl_feats[{level}] must be [B={batch}, N={self.num_cams}, '
                                 f'C={self.embed_dims}, h, w], got {tuple(feat.shape)}')
        if not isinstance(img_metas, (list, tuple)) or len(img_metas) != batch:
            raise ValueError(f'img_metas must be a list of B={batch} dicts, got {type(img_metas).__name__} '
                             f'of length {len(img_metas)}')
        expected_bev = (batch, self.bev_h * self.bev_w, self.embed_dims)
        if prev_bev is not None and tuple(prev_bev.shape) != expected_bev:
            raise ValueError(f'prev_bev must be {list(expected_bev)}, got {list(prev_bev.shape)}')
        if prev2cur is not None:
            if not isinstance(prev2cur, Tensor):
                raise TypeError(f'prev2cur must be a Tensor [B, 4, 4] or None, got {type(prev2cur).__name__}')
            if tuple(prev2cur.shape) != (batch, 4, 4):
                raise ValueError(f'prev2cur must be [{batch}, 4, 4], got {list(prev2cur.shape)}')
        return batch

    @staticmethod
    def _history_mask(batch: int, prev_bev, prev2cur, device) -> Tensor:
        """``[B]`` bool: the sample has a previous BEV and a non-zero ``prev2cur``."""
        if prev_bev is None or prev2cur is None:
            return torch.zeros(batch, dtype=torch.bool, device=device)
        return prev2cur.to(device).reshape(batch, -1).ne(0).any(-1)

    def _initial_queries(self, img_metas, prev2cur, has_history) -> Tensor:
        """``[B, H*W, C]`` learned BEV queries plus the CAN-bus embedding."""
        query = self.bev_queries.weight[None].expand(len(img_metas), -1, -1)
        if self.can_bus_mlp is None:
            return query
        can_bus = self._can_bus_signal(img_metas, prev2cur, has_history, self.compat)
        return query + self.can_bus_mlp(can_bus.to(query))[:, None, :]

    @staticmethod
    def _can_bus_signal(img_metas, prev2cur, has_history, compat: Optional[str] = None) -> Tensor:
        """``[B, 18]`` float64 CAN-bus MLP input with BEVFormer's relative-motion slots.

        As in BEVFormer's data pipeline, slots 0-2 and 17 hold the motion since the previous frame and are zero
        without history; here they come from ``prev2cur``: slots 0-2 = its translation (metres, the previous
        LiDAR origin in the current LiDAR frame; BEVFormer used the ego displacement in the global frame) and
        slot 17 = yaw gained by the ego in degrees (left turn positive, as BEVFormer's delta of ``yaw_deg``).
        The other slots are the sample's own ``can_bus`` (quaternion, accelerations, rates, speeds, ``yaw_rad``).
        With ``compat='uniad'``: slots 0-2 = the ego displacement in the global frame, slot 17 = the unwrapped
        difference of the ego yaws in ``[0, 360)`` degrees (``uniad_ego_motion``), as BEVFormer's pipeline.
        """
        can_bus = stack_can_bus(img_metas)
        if compat == 'uniad':
            delta, delta_yaw, _ = uniad_ego_motion(img_metas, prev2cur, has_history)
            can_bus[:, :3], can_bus[:, 17] = delta, delta_yaw
            return can_bus
        motion = torch.zeros(len(img_metas), 4, dtype=torch.float64)
        if prev2cur is not None:
            mat = prev2cur.detach().to(device='cpu', dtype=torch.float64)
            motion = torch.cat((mat[:, :3, 3], torch.rad2deg(relative_yaw(mat))[:, None]), -1)
            motion = motion * has_history.cpu()[:, None]
        can_bus[:, :3] = motion[:, :3]
        can_bus[:, 17] = motion[:, 3]
        return can_bus

    def _positional_encoding(self, batch: int) -> Tensor:
        """``[B, H*W, C]`` learned positional encoding: column embedding then row embedding."""
        mask = self.bev_queries.weight.new_zeros(1, self.bev_h, self.bev_w)
        return self.positional_encoding(mask).flatten(2).transpose(1, 2).expand(batch, -1, -1)

    def _camera_context(self, mlvl_feats, img_metas, geo_dtype) -> CameraContext:
        """Flatten the features and project the pillars into the cameras (shared by all layers)."""
        value, spatial_shapes = self._flatten_features(mlvl_feats)
        device = value.device
        points = pillar_points(self.bev_h, self.bev_w, self.pc_range, self.num_points_in_pillar, device, geo_dtype)
        lidar2img = stack_lidar2img(img_metas, self.num_cams, device).to(geo_dtype)
        unit, visible = project_to_cameras(points.view(-1, 3), lidar2img, input_sizes(img_metas, device),
                                           image_sizes(img_metas, self.num_cams, device))
        shape = (len(img_metas), self.num_cams, self.bev_h * self.bev_w, self.num_points_in_pillar)
        hits = rebatch_camera_hits(unit.view(*shape, 2), visible.view(shape))
        return CameraContext(value, spatial_shapes, level_start_index_of(spatial_shapes), hits)

    def _flatten_features(self, mlvl_feats):
        """``[B, N, L, C]`` features with camera and level embeddings, and ``[levels, 2]`` long ``(h, w)``."""
        feats, shapes = [], []
        for level, feat in enumerate(mlvl_feats):
            feat = feat.flatten(3).transpose(2, 3)  # [B, N, C, h, w] -> [B, N, h*w, C]
            if self.cams_embeds is not None:
                feat = feat + self.cams_embeds[None, :, None, :].to(feat.dtype)
            feats.append(feat + self.level_embeds[level].to(feat.dtype))
            shapes.append(mlvl_feats[level].shape[-2:])
        return torch.cat(feats, 2), torch.tensor(shapes, dtype=torch.long, device=feats[0].device)

    def _temporal_context(self, prev_bev, prev2cur, has_history, geo_dtype) -> TemporalContext:
        """TSA reference points of both queues and the previous BEV aligned to the current frame."""
        device, batch = has_history.device, has_history.shape[0]
        spatial_shapes, _ = single_level_shapes(self.bev_h, self.bev_w, device=device)
        centres = bev_cell_centres(self.bev_h, self.bev_w, self.pc_range, device, geo_dtype)
        current = bev_xy_to_unit(centres, self.pc_range)[None].expand(batch, -1, -1)  # [B, HW, 2]
        if not bool(has_history.any()):
            return TemporalContext(torch.stack((current, current), 1), spatial_shapes)
        history = has_history[:, None, None]
        motion = torch.where(history, prev2cur.to(device, geo_dtype), torch.eye(4, device=device, dtype=geo_dtype))
        previous = prev_bev_reference_points(motion, self.bev_h, self.bev_w, self.pc_range).to(geo_dtype)
        previous = torch.where(history, previous, current)
        prev_aligned = sample_bev(prev_bev, previous, spatial_shapes, self.use_cuda_kernel)
        return TemporalContext(torch.stack((previous, current), 1), spatial_shapes, prev_bev, prev_aligned,
                               has_history)

    def _uniad_temporal_context(self, img_metas, prev_bev, prev2cur, has_history, initial_query,
                                geo_dtype) -> TemporalContext:
        """BEVFormer's TSA inputs (``compat='uniad'``): the previous BEV rotated by the yaw change, both queues'
        reference points shifted by the displacement (BEVFormer's in-place shift), the layer-0 queries
        ``initial_query`` ``[B, HW, C]`` as the current queue of the samples with history."""
        device = has_history.device
        spatial_shapes, _ = single_level_shapes(self.bev_h, self.bev_w, device=device)
        centres = bev_cell_centres(self.bev_h, self.bev_w, self.pc_range, device, geo_dtype)
        delta, delta_yaw, yaw = uniad_ego_motion(img_metas, prev2cur, has_history)
        shift = uniad_reference_shift(delta, yaw, self.pc_range).to(device, geo_dtype)  # zero without history
        reference = bev_xy_to_unit(centres, self.pc_range)[None] + shift[:, None, :]  # [B, HW, 2]
        reference = torch.stack((reference, reference), 1)
        if not bool(has_history.any()):
            return TemporalContext(reference, spatial_shapes)
        rotated = rotate_bev_nearest(prev_bev, delta_yaw, self.bev_h, self.bev_w)
        return TemporalContext(reference, spatial_shapes, rotated, rotated, has_history, initial_query)
