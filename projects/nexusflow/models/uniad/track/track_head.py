"""``UniADTrackHead``: TrackFormer of UniAD stage 1 — detection and multi-object tracking from BEV features.

Follows UniAD's ``UniADTrack`` tracking path + ``BEVFormerTrackHead.get_detections`` + ``ClipMatcher``
(``reference/uniad.md`` §1.3, §1.4, §2.2). Per frame: fresh queries (``num_query`` object queries and one ego
query) and the tracks carried from the previous frame are decoded against the BEV; in training each decoder layer is
matched (tracked queries keep their GT id, the rest are Hungarian-matched) and supervised; then the tracks to carry
(matched with IoU >= ``gt_iou_threshold`` in training, live ids at inference) pass the memory bank and the QIM, and
their reference points are moved with their predicted velocity into the next frame's LiDAR coordinates.

Changed from UniAD: any batch size (per-sample query sets padded to the batch maximum with a mask), all cross-frame
state in one ``TrackState`` returned by ``predict``, the ego query index derived from ``num_query``, losses returned
from ``loss`` (no stateful criterion), label masks (``has_track_gt``) multiply each sample's terms, the mmdet3d 1.x
box convention (``box_coder.py``), and UniAD's QIM IoU threshold of 0.5 replaced by ``gt_iou_threshold``.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.layers.transformer import inverse_sigmoid
from mmengine.model import BaseModule, ModuleList, bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet3d.registry import MODELS, TASK_UTILS
from mmdet3d.structures import LiDARInstance3DBoxes
from mmdet3d.structures.ops import bbox_overlaps_nearest_3d
from ....core.frames import lidar2global_of, timestamp_of
from ....core.head_tap import PredictionTap
from ...layers import build_mlp
from .box_coder import CODE_SIZE, VELOCITY_DIMS, TrackBoxCoder
from .geometry import propagate_reference_points
from .instances import EGO_ID, FREE_ID, TrackInstances, pad_stack, padding_mask, unpad
from .state import TrackState
from .targets import FrameTargets, clip_targets


class FrameOutput(NamedTuple):
    """Decoder outputs of one frame, padded over the batch (``L`` layers, ``N`` = largest query set)."""
    cls_logits: Tensor      # [L, B, N, K] fp32
    box_codes: Tensor       # [L, B, N, 10] fp32, metres
    states: Tensor          # [L, B, N, C]
    last_reference: Tensor  # [B, N, 3] refined reference of the last layer, inverse-sigmoid space


def _with_type(default_type: str, defaults: dict, cfg: dict) -> dict:
    """``dict(type=default_type, **defaults)`` updated with the user's ``cfg`` (which may swap the type)."""
    merged = dict(type=default_type, **defaults)
    merged.update(cfg)
    return merged


@MODELS.register_module()
class UniADTrackHead(BaseModule):
    """TrackFormer head: DETR-style decoder over the BEV, track queries, QIM, memory bank, runtime tracker.

    Args:
        num_query (int): object queries per frame.
        num_classes (int): object classes ``K``.
        embed_dims (int): channels ``C`` of BEV and queries.
        bev_h, bev_w (int): BEV rows / columns; the BEV is ``[B, bev_h * bev_w, C]`` (README grid convention).
        point_cloud_range (Sequence[float]): ``(x_min, y_min, z_min, x_max, y_max, z_max)``, metres, LiDAR frame.
        with_ego_query (bool): add the ego query (index ``num_query`` of the fresh queries), supervised with the
            ego box.
        decoder (dict): ``UniADTrackDecoder`` arguments (``num_layers``, ``num_heads``, ``num_points``,
            ``ffn_dims``, ``dropout``); a ``type`` key swaps the decoder.
        num_reg_fcs (int): hidden layers of the class and box branches.
        code_size (int): box code size; only 10 (with velocity) is supported.
        code_weights (Sequence[float]): weights of the 10 code entries in the box loss.
        qim (dict): ``UniADTrackQIM`` arguments.
        memory_bank (dict): ``UniADTrackMemoryBank`` arguments.
        tracker (dict): ``UniADRuntimeTracker`` arguments.
        matcher (dict): ``UniADClipMatcher`` arguments (``cls_cost``, ``reg_cost``).
        loss_cls (dict): classification loss config.
        loss_bbox (dict): box loss config.
        gt_iou_threshold (float): in training, a matched track is carried to the next frame if the BEV IoU of its
            prediction with its GT box is at least this.
        ego_box_size (Sequence[float]): ``(l, w, h)`` of the ego box in metres.
        ego_label (int): class index of the ego box (``car``).
        use_cuda_kernel (bool): use mmcv's deformable-attention CUDA kernel on CUDA tensors.
        heatmap_init (dict, optional): ``UniADHeatmapQueryInit`` arguments (``nms_kernel``, ``min_radius``,
            ``min_overlap``, ``loss_weight``, ``track_radius``): place the fresh queries at the peaks of a class
            heatmap of the BEV (``heatmap_init.py``) instead of UniAD's learned reference points; ``None`` (default)
            is UniAD's way.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, num_query: int = 900, num_classes: int = 10, embed_dims: int = 256, bev_h: int = 200,
                 bev_w: int = 200, point_cloud_range: Sequence[float] = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0),
                 with_ego_query: bool = True,
                 decoder: dict = dict(num_layers=6, num_heads=8, num_points=4, ffn_dims=512, dropout=0.1),
                 num_reg_fcs: int = 2, code_size: int = 10,
                 code_weights: Sequence[float] = (1.0, ) * 8 + (0.2, 0.2),
                 qim: dict = dict(fp_ratio=0.3, random_drop=0.1, update_query_pos=True, merger_dropout=0.0),
                 memory_bank: dict = dict(memory_bank_len=4, save_period=3, score_thresh=0.0),
                 tracker: dict = dict(score_thresh=0.4, filter_score_thresh=0.35, miss_tolerance=5),
                 matcher: dict = dict(cls_cost=dict(type='mmdet.FocalLossCost', weight=2.0),
                                      reg_cost=dict(type='UniADTrackBoxL1Cost', weight=0.25)),
                 loss_cls: dict = dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                                       loss_weight=2.0),
                 loss_bbox: dict = dict(type='mmdet.L1Loss', loss_weight=0.25), gt_iou_threshold: float = 0.3,
                 ego_box_size: Sequence[float] = (4.08, 1.73, 1.56), ego_label: int = 0,
                 use_cuda_kernel: bool = True, heatmap_init: Optional[dict] = None, init_cfg=None) -> None:
        super().__init__(init_cfg)
        if code_size != CODE_SIZE:
            raise ValueError(f'code_size must be {CODE_SIZE} (cx, cy, log l, log w, cz, log h, sin, cos, vx, vy), '
                             f'got {code_size}')
        if num_query < 1 or num_reg_fcs < 0:
            raise ValueError(f'num_query must be >= 1 and num_reg_fcs >= 0, got {num_query} and {num_reg_fcs}')
        if not 0 <= ego_label < num_classes:
            raise ValueError(f'ego_label must be a class index in [0, {num_classes}), got {ego_label}')
        self.num_query, self.num_classes, self.embed_dims = num_query, num_classes, embed_dims
        self.bev_h, self.bev_w, self.with_ego_query = bev_h, bev_w, with_ego_query
        self.gt_iou_threshold, self.ego_label = gt_iou_threshold, ego_label
        self.ego_box_size = tuple(ego_box_size)
        self.coder = TrackBoxCoder(point_cloud_range)
        self.query_embedding = nn.Embedding(num_query + int(with_ego_query), 2 * embed_dims)
        self.reference_points = nn.Linear(embed_dims, 3)
        self.decoder = MODELS.build(_with_type('UniADTrackDecoder', dict(embed_dims=embed_dims,
                                                                         use_cuda_kernel=use_cuda_kernel), decoder))
        self.cls_branches = ModuleList([self._cls_branch(num_reg_fcs) for _ in range(self.decoder.num_layers)])
        self.reg_branches = ModuleList([
            build_mlp(embed_dims, [embed_dims] * num_reg_fcs, CODE_SIZE, dict(type='ReLU'))
            for _ in range(self.decoder.num_layers)])
        self.memory_bank = MODELS.build(_with_type('UniADTrackMemoryBank', dict(embed_dims=embed_dims), memory_bank))
        self.qim = MODELS.build(_with_type('UniADTrackQIM', dict(embed_dims=embed_dims), qim))
        self.tracker = TASK_UTILS.build(_with_type('UniADRuntimeTracker', {}, tracker))
        self.matcher = TASK_UTILS.build(_with_type('UniADClipMatcher', {}, matcher))
        self.loss_fn = MODELS.build(dict(type='UniADTrackLoss', num_classes=num_classes, code_weights=code_weights,
                                         loss_cls=loss_cls, loss_bbox=loss_bbox))
        self.heatmap_init = None if heatmap_init is None else MODELS.build(_with_type(
            'UniADHeatmapQueryInit', dict(embed_dims=embed_dims, num_classes=num_classes, bev_h=bev_h, bev_w=bev_w,
                                          point_cloud_range=point_cloud_range, num_queries=num_query), heatmap_init))
        # Tap point for plug-ins (README "Model interfaces"): called on the last decoder layer's predictions of every
        # frame; an identity, so hooks read them without changing any output.
        self.pred_tap = PredictionTap(fields=('cls_logits', 'boxes', 'padding_mask'))

    def _cls_branch(self, num_fcs: int) -> nn.Sequential:
        layers = []
        for _ in range(num_fcs):
            layers += [nn.Linear(self.embed_dims, self.embed_dims), nn.LayerNorm(self.embed_dims), nn.ReLU(True)]
        return nn.Sequential(*layers, nn.Linear(self.embed_dims, self.num_classes))

    def init_weights(self) -> None:
        """Children's own inits, then the class-branch bias at prior probability 0.01 (focal loss, as DETR3D)."""
        super().init_weights()
        for branch in self.cls_branches:
            nn.init.constant_(branch[-1].bias, bias_init_with_prob(0.01))

    def init_state(self, batch_size: int, device: Optional[torch.device] = None) -> TrackState:
        """An empty ``TrackState`` for ``batch_size`` sequences (poses on ``device``, default the head's)."""
        return TrackState.empty(batch_size, device or self.query_embedding.weight.device)

    # ------------------------------------------------------------------ training
    def loss(self, bevs: Sequence[Tensor], frames: Sequence[Sequence]) -> Dict[str, Tensor]:
        """Run a training clip and return its losses.

        Args:
            bevs (Sequence[Tensor]): ``Q`` BEV features ``[B, bev_h * bev_w, C]`` in frame order (row-major grid,
                row ``i`` <-> LiDAR y, column ``j`` <-> LiDAR x).
            frames (Sequence[Sequence[Det3DDataSample]]): ``Q`` lists of ``B`` samples with ``gt_instances_3d``
                (``bboxes_3d`` 9-dim bottom-centre LiDAR boxes, ``labels_3d``, ``instance_ids``) and metainfo
                ``ego2global``, ``lidar2ego``, ``timestamp`` (s), ``scene_token``, ``has_track_gt``.

        Returns:
            dict[str, Tensor]: ``frame_{f}_loss_cls_{d}`` and ``frame_{f}_loss_bbox_{d}`` for every frame ``f`` and
            decoder layer ``d`` (scalars, fp32), ``frame_{f}_loss_heatmap`` with ``heatmap_init``, and
            ``loss_ddp_coverage`` (exactly 0, see ``_coverage_term``). A sample with ``has_track_gt=False`` adds
            exactly zero to each.
        """
        if len(bevs) != len(frames) or len(bevs) == 0:
            raise ValueError(f'loss needs one BEV per frame, got {len(bevs)} BEVs and {len(frames)} frames')
        device = bevs[0].device
        targets = clip_targets(frames, self.coder, self.num_classes, device,
                               self.ego_box_size if self.with_ego_query else None, self.ego_label)
        state = self.init_state(len(frames[0]), device)
        losses = {}
        for index, (bev, samples) in enumerate(zip(bevs, frames)):
            metas = [sample.metainfo for sample in samples]
            self._check_inputs(bev, state, metas)
            logits = None
            if self.heatmap_init is not None:
                logits = self.heatmap_init(bev)
                losses[f'frame_{index}_loss_heatmap'] = self.heatmap_init.loss(logits, targets[index])
            tracks, output = self._decode(bev, self._frame_queries(state, metas, bev, logits))
            frame_losses, tracks = self._frame_losses(tracks, output, targets[index])
            losses.update({f'frame_{index}_{key}': value for key, value in frame_losses.items()})
            if index + 1 < len(frames):
                active = [(t.obj_ids >= 0) & (t.iou >= self.gt_iou_threshold) for t in tracks]
                self._carry(state, tracks, metas, active)
        losses['loss_ddp_coverage'] = self._coverage_term()
        return losses

    def _frame_losses(self, tracks: List[TrackInstances], output: FrameOutput,
                      targets: List[FrameTargets]) -> Tuple[Dict[str, Tensor], List[TrackInstances]]:
        """Match and supervise every decoder layer; commit the last layer's matching (new ids, IoU)."""
        lengths = [len(t) for t in tracks]
        obj_ids = [t.obj_ids for t in tracks]
        losses, gt_index = {}, []
        for layer in range(output.cls_logits.shape[0]):
            logits = unpad(output.cls_logits[layer], lengths)
            codes = unpad(output.box_codes[layer], lengths)
            gt_index = [self.matcher.match(ids, cls.detach(), box.detach(), t.ids, t.labels, t.codes)
                        for ids, cls, box, t in zip(obj_ids, logits, codes, targets)]
            layer_losses = self.loss_fn(logits, codes, gt_index, obj_ids, targets)
            losses.update({f'{key}_{layer}': value for key, value in layer_losses.items()})
        last_layer_index = gt_index
        return losses, [self._commit(t, g, target) for t, g, target in zip(tracks, last_layer_index, targets)]

    def _commit(self, tracks: TrackInstances, gt_index: Tensor, target: FrameTargets) -> TrackInstances:
        """Give matched queries their GT id and the BEV IoU of their prediction; others keep id and IoU."""
        rows = torch.nonzero(gt_index >= 0).flatten()
        if len(rows) == 0:
            return tracks
        tracks = tracks[:]
        gts = gt_index[rows]
        obj_ids, iou = tracks.obj_ids.clone(), tracks.iou.clone()
        obj_ids[rows] = target.ids[gts]
        pred_boxes = self.coder.decode(tracks.pred_codes[rows].detach())
        iou[rows] = bbox_overlaps_nearest_3d(pred_boxes[:, :7], target.boxes[gts, :7], is_aligned=True,
                                             coordinate='lidar').to(iou)
        tracks.obj_ids, tracks.iou = obj_ids, iou
        return tracks

    def _coverage_term(self) -> Tensor:
        """Exactly 0, but depends on every QIM and memory-bank parameter.

        Those modules see no tracks in some clips (a label-masked sample, an untrained model whose IoUs stay below
        ``gt_iou_threshold``, a one-frame clip); this keeps their parameters in the graph with zero gradient, so
        DDP works with ``find_unused_parameters=False``.
        """
        params = [p for module in (self.qim, self.memory_bank) for p in module.parameters() if p.requires_grad]
        zero = self.query_embedding.weight.new_zeros(())
        return sum((p.sum() for p in params), zero) * 0.0

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, bev: Tensor, state: TrackState,
                metas: Sequence[dict]) -> Tuple[List[InstanceData], TrackState]:
        """Track one frame of ``B`` sequences.

        Args:
            bev (Tensor): ``[B, bev_h * bev_w, C]`` BEV of the current frame.
            state (TrackState): state after the previous frame of each sequence (``init_state`` at the start;
                ``state.reset(b)`` when sample ``b`` starts a new scene).
            metas (Sequence[dict]): ``B`` metainfo dicts with ``ego2global``, ``lidar2ego`` (4x4), ``timestamp``
                (s) and ``scene_token``.

        Returns:
            tuple: ``B`` ``InstanceData`` with ``bboxes_3d`` (``LiDARInstance3DBoxes``, 9-dim, bottom centre, LiDAR
            frame of this frame, velocity m/s), ``scores_3d`` ``[M]`` in ``[0, 1]``, ``labels_3d`` ``[M]`` long,
            ``instance_ids`` ``[M]`` long (unique within a scene, never reused) for the live tracks with score
            ``>= filter_score_thresh`` (the ego query excluded), at most ``tracker.max_num`` (highest scores); and the
            updated state.
        """
        self._check_inputs(bev, state, metas)
        logits = None if self.heatmap_init is None else self.heatmap_init(bev)
        tracks, _ = self._decode(bev, self._frame_queries(state, metas, bev, logits))
        for b, sample_tracks in enumerate(tracks):
            sample_tracks.obj_ids, sample_tracks.disappear, state.next_id[b] = self.tracker.update(
                sample_tracks.obj_ids, sample_tracks.scores, sample_tracks.disappear, state.next_id[b])
        results = [self._results(sample_tracks) for sample_tracks in tracks]
        self._carry(state, tracks, metas, [sample_tracks.obj_ids >= 0 for sample_tracks in tracks])
        return results, state

    def _results(self, tracks: TrackInstances) -> InstanceData:
        """Decoded live tracks of one sample (see ``predict``)."""
        live = tracks[self.tracker.output_indices(tracks.obj_ids, tracks.scores)]
        boxes = self.coder.decode(live.pred_codes.float())
        return InstanceData(bboxes_3d=LiDARInstance3DBoxes(boxes, box_dim=9), scores_3d=live.scores,
                            labels_3d=live.pred_logits.argmax(dim=-1), instance_ids=live.obj_ids)

    # ------------------------------------------------------------------ shared frame steps
    def _check_inputs(self, bev: Tensor, state: TrackState, metas: Sequence[dict]) -> None:
        expected = (state.batch_size, self.bev_h * self.bev_w, self.embed_dims)
        if bev.dim() != 3 or tuple(bev.shape) != expected:
            raise ValueError(f'bev must be [B, bev_h*bev_w, C] = {list(expected)}, got {list(bev.shape)}')
        if len(metas) != state.batch_size:
            raise ValueError(f'got {len(metas)} metainfo dicts for a state of batch size {state.batch_size}')
        for b, meta in enumerate(metas):
            if 'scene_token' not in meta:
                raise KeyError(f'metainfo of sample {b} lacks "scene_token"')
            previous = state.scene_token[b]
            if previous is not None and previous != meta['scene_token']:
                raise ValueError(f'sample {b} moved from scene {previous!r} to {meta["scene_token"]!r}: call '
                                 f'state.reset({b}) when a sequence starts a new scene')

    def _fresh_tracks(self, peak_xy: Optional[Tensor] = None, peak_feat: Optional[Tensor] = None) -> TrackInstances:
        """The ``num_query`` (+1 ego) fresh queries, rebuilt from the embedding (with grad) every frame.

        With ``heatmap_init`` the object queries start at the sample's heatmap peaks: ``peak_xy`` ``[num_query, 2]``
        unit BEV locations replace the learned reference ``(x, y)`` and ``peak_feat`` ``[num_query, C]`` is added to
        the query content (the ego query keeps its learned reference).
        """
        query = self.query_embedding.weight
        num, device = query.shape[0], query.device
        ref_pts = self.reference_points(query[:, :self.embed_dims]).float()
        if peak_xy is not None:
            pad = num - len(peak_xy)
            ref_pts = torch.cat((torch.cat((inverse_sigmoid(peak_xy.float()), ref_pts[len(peak_xy):, :2])),
                                 ref_pts[:, 2:]), dim=1)
            query = torch.cat((query[:, :self.embed_dims],
                               query[:, self.embed_dims:] + F.pad(peak_feat.to(query.dtype), (0, 0, 0, pad))), dim=1)
        obj_ids = torch.full((num, ), FREE_ID, dtype=torch.long, device=device)
        if self.with_ego_query:
            obj_ids[self.num_query] = EGO_ID
        mem_len = self.memory_bank.memory_bank_len
        zeros = query.new_zeros
        return TrackInstances(
            query=query, ref_pts=ref_pts, obj_ids=obj_ids,
            iou=zeros(num), scores=zeros(num), disappear=torch.zeros_like(obj_ids),
            pred_logits=zeros(num, self.num_classes), pred_codes=zeros(num, CODE_SIZE),
            output_embedding=zeros(num, self.embed_dims), mem_bank=zeros(num, mem_len, self.embed_dims),
            mem_padding_mask=torch.ones(num, mem_len, dtype=torch.bool, device=device),
            save_period=torch.zeros_like(obj_ids))

    def _frame_queries(self, state: TrackState, metas: Sequence[dict], bev: Tensor,
                       logits: Optional[Tensor] = None) -> List[TrackInstances]:
        """Per sample: fresh queries followed by the carried tracks moved into this frame.

        ``logits``: the heatmap ``[B, K, bev_h, bev_w]`` with ``heatmap_init`` (the fresh queries start at its peaks
        away from the carried tracks, see ``HeatmapQueryInit.track_radius``), else None.
        """
        carried = [self._moved_tracks(state, b, meta) for b, meta in enumerate(metas)]
        peaks = None
        if logits is not None:
            tracked = [None if c is None else c.ref_pts[c.obj_ids >= 0, :2].sigmoid() for c in carried]
            peaks = self.heatmap_init.query_inputs(bev, logits, tracked)
        queries = []
        for b, moved in enumerate(carried):
            fresh = self._fresh_tracks() if peaks is None else self._fresh_tracks(peaks[0][b], peaks[1][b])
            queries.append(fresh if moved is None else TrackInstances.cat([fresh, moved]))
        return queries

    def _moved_tracks(self, state: TrackState, b: int, meta: dict) -> Optional[TrackInstances]:
        """Sample ``b``'s carried tracks with their reference points moved into this frame (None if it has none)."""
        carried = state.tracks[b]
        if carried is None or len(carried) == 0:
            return None
        prev2cur = state.prev2cur(b, lidar2global_of(meta))
        moved = propagate_reference_points(carried.ref_pts, carried.pred_codes[:, list(VELOCITY_DIMS)], prev2cur,
                                           timestamp_of(meta) - state.timestamp[b], self.coder)
        height = self.reference_points(carried.query[:, :self.embed_dims])[:, 2:].float()
        carried = carried[:]
        carried.ref_pts = torch.cat((moved[:, :2], height), dim=1)
        return carried

    def _decode(self, bev: Tensor, tracks: List[TrackInstances]) -> Tuple[List[TrackInstances], FrameOutput]:
        """Decode the padded batch: the tracks with their last-layer predictions stored, and all layers' outputs."""
        lengths = [len(t) for t in tracks]
        query_pos, query_feat = pad_stack(tracks, 'query').split(self.embed_dims, dim=-1)
        reference = pad_stack(tracks, 'ref_pts')                                         # [B, N, 3]
        mask = padding_mask(tracks) if len(set(lengths)) > 1 else None
        states, refs = self.decoder(query_feat, query_pos, reference.sigmoid(), bev, (self.bev_h, self.bev_w),
                                    mask, self.reg_branches)
        before = [reference] + [inverse_sigmoid(refs[layer].float()) for layer in range(len(refs) - 1)]
        deltas = [branch(state).float() for branch, state in zip(self.reg_branches, states)]
        output = FrameOutput(
            cls_logits=torch.stack([branch(state).float() for branch, state in zip(self.cls_branches, states)]),
            box_codes=torch.stack([self.coder.refine(d, r) for d, r in zip(deltas, before)]),
            states=states, last_reference=TrackBoxCoder.refined_reference(deltas[-1], before[-1]))
        self.pred_tap(dict(cls_logits=output.cls_logits[-1], boxes=TrackBoxCoder.centre_size(output.box_codes[-1]),
                           padding_mask=padding_mask(tracks) | (pad_stack(tracks, 'obj_ids') == EGO_ID)))
        return [self._store(t, output, b, n) for b, (t, n) in enumerate(zip(tracks, lengths))], output

    @staticmethod
    def _store(tracks: TrackInstances, output: FrameOutput, b: int, num: int) -> TrackInstances:
        tracks = tracks[:]
        tracks.pred_logits = output.cls_logits[-1, b, :num]
        tracks.pred_codes = output.box_codes[-1, b, :num]
        tracks.output_embedding = output.states[-1, b, :num]
        tracks.ref_pts = output.last_reference[b, :num]
        tracks.scores = tracks.pred_logits.detach().sigmoid().max(dim=-1).values
        return tracks

    def _carry(self, state: TrackState, tracks: List[TrackInstances], metas: Sequence[dict],
               active: List[Tensor]) -> None:
        """Memory bank + QIM on the tracks to carry; record them with this frame's pose in ``state``."""
        for b, (sample_tracks, meta) in enumerate(zip(tracks, metas)):
            carried = self.qim(self.memory_bank(self.qim.select(sample_tracks, active[b])))
            state.advance(b, carried, lidar2global_of(meta), timestamp_of(meta), meta['scene_token'])
