"""Training targets of the track head, built once per clip from the per-frame data samples.

A sample whose ``metainfo['has_track_gt']`` is ``False`` gets ``weight = 0`` and **empty** GT whatever its
``gt_instances_3d`` holds: its labels are neither matched, nor used to choose carried tracks, nor counted in the
loss normaliser. Its ego box target is still built (from poses, which are inputs, not labels) and weighted by 0.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from .box_coder import TrackBoxCoder
from .geometry import ego_box_in_lidar, ego_velocity_in_lidar


@dataclass
class FrameTargets:
    """GT of one sample in one frame, on the head's device.

    Attributes:
        ids (Tensor): ``[M]`` long instance ids (unique within the frame).
        labels (Tensor): ``[M]`` long classes in ``[0, num_classes)``.
        boxes (Tensor): ``[M, 9]`` float LiDAR boxes ``(x, y, z_bottom, l, w, h, yaw, vx, vy)``.
        codes (Tensor): ``[M, 10]`` float box codes of ``boxes``.
        ego_code (Tensor, optional): ``[10]`` box code of the ego box, ``None`` without an ego query.
        ego_label (int): class of the ego box.
        weight (float): 1.0 if the sample has track labels, else 0.0.
    """
    ids: Tensor
    labels: Tensor
    boxes: Tensor
    codes: Tensor
    ego_code: Optional[Tensor]
    ego_label: int
    weight: float

    def __len__(self) -> int:
        return len(self.ids)


def has_track_gt(sample) -> bool:
    """The ``has_track_gt`` flag of a ``Det3DDataSample``; a missing flag is an error (see the README contract)."""
    if 'has_track_gt' not in sample.metainfo:
        raise KeyError('data sample metainfo lacks "has_track_gt" (bool); set it True for track-labelled samples '
                       '(the dataset / geo-split wrapper does), False for samples without track labels')
    return bool(sample.metainfo['has_track_gt'])


def _gt_of(sample, labelled: bool, num_classes: int, device: torch.device):
    gt = sample.gt_instances_3d
    boxes = gt.bboxes_3d.tensor.to(device=device, dtype=torch.float32)
    if boxes.shape[-1] != 9:
        raise ValueError(f'gt_instances_3d.bboxes_3d must have box_dim=9 (with velocity), got {boxes.shape[-1]}')
    ids, labels = gt.instance_ids.to(device).long(), gt.labels_3d.to(device).long()
    if not (len(ids) == len(labels) == len(boxes)):
        raise ValueError(f'GT lengths differ: {len(boxes)} boxes, {len(labels)} labels, {len(ids)} instance_ids')
    if not labelled:
        return ids[:0], labels[:0], boxes[:0]
    if len(torch.unique(ids)) != len(ids):
        raise ValueError(f'instance_ids must be unique within a frame, got {ids.tolist()}')
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'labels_3d must lie in [0, {num_classes}), got {labels.tolist()}; filter the GT to the '
                         f'classes in the pipeline')
    return ids, labels, boxes


def clip_targets(frames: Sequence[Sequence], coder: TrackBoxCoder, num_classes: int, device: torch.device,
                 ego_box_size: Optional[Sequence[float]], ego_label: int) -> List[List[FrameTargets]]:
    """Targets of a clip.

    Args:
        frames (Sequence[Sequence[Det3DDataSample]]): ``Q`` frames of ``B`` samples (frame-major).
        coder (TrackBoxCoder): encodes boxes.
        num_classes (int): GT labels must lie in ``[0, num_classes)``.
        device (torch.device): device of the targets.
        ego_box_size (Sequence[float], optional): ``(l, w, h)`` of the ego box; ``None`` builds no ego target.
        ego_label (int): class of the ego box.

    Returns:
        list[list[FrameTargets]]: ``targets[f][b]``.
    """
    num_samples = len(frames[0])
    targets = []
    for index, samples in enumerate(frames):
        if len(samples) != num_samples:
            raise ValueError(f'frame {index} has {len(samples)} samples, frame 0 has {num_samples}')
        row = []
        for b, sample in enumerate(samples):
            labelled = has_track_gt(sample)
            ids, labels, boxes = _gt_of(sample, labelled, num_classes, device)
            ego_code = None
            if ego_box_size is not None:
                metas = [frame[b].metainfo for frame in frames]
                ego_box = ego_box_in_lidar(metas[index], ego_velocity_in_lidar(metas, index), ego_box_size)
                ego_code = coder.encode(ego_box.to(device))
            row.append(FrameTargets(ids, labels, boxes, coder.encode(boxes), ego_code, ego_label,
                                    1.0 if labelled else 0.0))
        targets.append(row)
    return targets
