"""nuScenes track + map dataset: clips of ``Q`` consecutive frames of one scene (UniAD's temporal queue).

Follows UniAD's ``NuScenesE2EDataset.prepare_train_data`` (queue of the previous ``Q - 1`` frames of the same
scene) with two changes: clips are enumerated up front (a frame ends a clip iff it has ``Q - 1`` linked
predecessors in its scene), so no item is ever resampled, and every frame goes through the same per-frame pipeline
whose outputs are stacked (README "Dataset items").
"""
import os.path as osp
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset, force_full_init

from mmdet3d.registry import DATASETS, TRANSFORMS
from .converter import CLASSES, INFO_VERSION
from .map_rasterizer import MAP_CLASSES, expansion_path
from .verify import load_info_file

CREATE_DATA_HINT = ('python tools/create_data.py nuscenes --root-path <data_root> --version <version> '
                    '--out-dir <data_root> [--canbus <data_root>]')


@DATASETS.register_module('NexusFlowNuScenesTrackMapDataset')
class NuScenesTrackMapDataset(BaseDataset):
    """Multi-view camera clips with track GT (boxes + ids) and map GT, from ``tools/create_data.py`` infos.

    Items: training -> clips of ``queue_length`` consecutive frames of one scene, one clip per frame that has
    ``queue_length - 1`` predecessors in its scene; ``test_mode`` -> single frames (``Q = 1``) sorted by scene
    name, then timestamp. ``__getitem__`` returns ``{'inputs': {'img': uint8 Tensor [Q, N, 3, H, W]},
    'data_samples': list of Q Det3DDataSample}`` in frame order.

    Args:
        data_root (str): nuScenes data root (camera paths in the infos are relative to it).
        ann_file (str): info pkl, absolute or relative to ``data_root``.
        pipeline (Sequence[dict | Callable]): per-frame transforms, ending with ``PackTrackMapInputs``.
        queue_length (int): frames per training clip ``Q`` (>= 1).
        test_mode (bool): single-frame items in scene order.
        metainfo (dict, optional): overrides, e.g. ``classes`` (labels are remapped by class name).
        version (str, optional): expected nuScenes version of the infos, e.g. ``'v1.0-trainval'``; checked.
        load_interval (int): keep every ``load_interval``-th item (after clip enumeration).
        check_map_expansion (bool): fail at init if a location's map expansion JSON is missing.
        lazy_init, serialize_data, indices: as in mmengine ``BaseDataset`` (``indices`` selects frames).

    ``metainfo`` holds the info pkl's metainfo (``version``, ``eval_set``, ...) and the dataset's ``data_root`` and
    ``ann_file`` (joined path): the metrics default their own settings to these (``dataset_meta``).
    """

    METAINFO = dict(classes=CLASSES, map_classes=MAP_CLASSES)

    def __init__(self, data_root: str, ann_file: str, pipeline: Sequence[Union[dict, Callable]] = (),
                 queue_length: int = 3, test_mode: bool = False, metainfo: Optional[dict] = None,
                 version: Optional[str] = None, load_interval: int = 1, check_map_expansion: bool = True,
                 lazy_init: bool = False, serialize_data: bool = True,
                 indices: Optional[Union[int, Sequence[int]]] = None):
        if not osp.isdir(data_root):
            raise FileNotFoundError(f'data_root {data_root!r} is not a folder; point data_root at the nuScenes '
                                    f'root (holding samples/, maps/, <version>/) or create it with {CREATE_DATA_HINT}')
        if queue_length < 1:
            raise ValueError(f'queue_length must be >= 1, got {queue_length}')
        if load_interval < 1:
            raise ValueError(f'load_interval must be >= 1, got {load_interval}')
        self.queue_length = 1 if test_mode else int(queue_length)
        self.version = version
        self.load_interval = int(load_interval)
        self.check_map_expansion = check_map_expansion
        self.clip_ends = np.zeros(0, dtype=np.int64)  # frame index ending each item, set by full_init
        self.label_map = {}  # info-file label -> configured label, set by load_data_list
        # built from the mmdet3d registry so that the dataset works without ``default_scope='mmdet3d'``
        transforms = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(ann_file=ann_file, metainfo=metainfo, data_root=data_root, pipeline=transforms,
                         test_mode=test_mode, lazy_init=lazy_init, serialize_data=serialize_data, indices=indices)
        # the metrics read the root and the info file from dataset_meta (set by the runner from this metainfo)
        self._metainfo.update(data_root=self.data_root, ann_file=self.ann_file)

    # ---- loading ----------------------------------------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        """Read and validate the info pkl; frames sorted by (scene name, timestamp), labels remapped by name."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'info file {self.ann_file} not found; create it with {CREATE_DATA_HINT}')
        annotations = load_info_file(self.ann_file)
        meta = self._check_info_file(annotations)
        if not annotations['data_list']:
            raise ValueError(f'{self.ann_file} holds no samples (split {meta.get("split")!r} of version '
                             f'{meta.get("version")!r} has no scenes); check the split lists or use another ann_file')
        for key, value in meta.items():
            self._metainfo.setdefault(key, value)
        self.label_map = self._label_map(meta.get('classes', CLASSES))
        infos = sorted(annotations['data_list'], key=lambda info: (info['scene_name'], info['timestamp']))
        return [self.parse_data_info(info) for info in infos]

    def _check_info_file(self, annotations) -> dict:
        if not isinstance(annotations, dict) or 'metainfo' not in annotations or 'data_list' not in annotations:
            raise ValueError(f'{self.ann_file} is not an info file of this project (expected a dict with metainfo '
                             f'and data_list); create it with {CREATE_DATA_HINT}')
        meta = annotations['metainfo']
        if meta.get('info_version') != INFO_VERSION:
            raise ValueError(f'{self.ann_file} has info_version {meta.get("info_version")!r}, expected '
                             f'{INFO_VERSION!r} (it was written by another tool, e.g. mmdet3d or UniAD); '
                             f'regenerate it with {CREATE_DATA_HINT}')
        if self.version is not None and meta.get('version') != self.version:
            raise ValueError(f'{self.ann_file} holds nuScenes {meta.get("version")!r} infos but the config expects '
                             f'version {self.version!r}; fix ann_file / version, or regenerate with '
                             f'{CREATE_DATA_HINT.replace("<version>", self.version)}')
        return meta

    def _label_map(self, file_classes: Sequence[str]) -> dict:
        """pkl label index -> index in ``metainfo['classes']`` (-1 for classes not configured)."""
        classes = list(self._metainfo['classes'])
        mapping = {idx: (classes.index(name) if name in classes else -1) for idx, name in enumerate(file_classes)}
        mapping[-1] = -1
        return mapping

    def parse_data_info(self, raw_info: dict) -> dict:
        """Absolute camera paths and remapped ``bbox_label_3d``; everything else as in the info file."""
        info = dict(raw_info)
        info['images'] = {cam: dict(cam_info, img_path=osp.join(self.data_root, cam_info['img_path']))
                          for cam, cam_info in raw_info['images'].items()}
        info['instances'] = [dict(inst, bbox_label_3d=self.label_map[inst['bbox_label_3d']])
                             for inst in raw_info['instances']]
        return info

    def full_init(self) -> None:
        """Load the frames (mmengine ``BaseDataset.full_init``), then enumerate the clips."""
        if self._fully_initialized:
            return
        super().full_init()
        frames = [self.get_frame_info(i) for i in range(self._frame_count())]
        self.clip_ends = self._enumerate_clips(frames)
        if self.check_map_expansion:
            self._check_map_files(frames)

    def _enumerate_clips(self, frames: List[dict]) -> np.ndarray:
        """Indices of the frames that end a clip of ``queue_length`` linked frames, every ``load_interval``-th."""
        run = np.zeros(len(frames), dtype=np.int64)
        for idx, frame in enumerate(frames):
            linked = idx > 0 and frame['prev'] == frames[idx - 1]['token'] and frame['prev'] != ''
            run[idx] = run[idx - 1] + 1 if linked else 1
        ends = np.flatnonzero(run >= self.queue_length)
        if len(frames) and not len(ends):
            raise ValueError(f'{self.ann_file}: no clip of queue_length={self.queue_length} consecutive frames fits '
                             f'in any scene (the longest scene has {int(run.max())} linked frames); lower '
                             f'queue_length, or create the data with more samples per scene (tools/create_data.py '
                             f'synthetic --samples-per-scene N with N >= {self.queue_length})')
        return ends[::self.load_interval].astype(np.int64)

    def _check_map_files(self, frames: List[dict]) -> None:
        scenes_by_location = {}
        for frame in frames:
            scenes_by_location.setdefault(frame['location'], set()).add(frame['scene_name'])
        for location in sorted(scenes_by_location):
            path = expansion_path(self.data_root, location)
            if not osp.isfile(path):
                raise FileNotFoundError(f'map expansion {path} for location {location!r} (scenes '
                                        f'{sorted(scenes_by_location[location])[:3]}...) is missing; download the '
                                        f'nuScenes map expansion v1.3 into {osp.dirname(path)}, or set '
                                        f'check_map_expansion=False for a pipeline without map GT')

    # ---- items ------------------------------------------------------------------------------------------------
    @force_full_init
    def __len__(self) -> int:
        return len(self.clip_ends)

    @property
    def num_frames(self) -> int:
        """Number of frames (not items) in the dataset."""
        self.full_init()
        return self._frame_count()

    def _frame_count(self) -> int:
        return len(self.data_address) if self.serialize_data else len(self.data_list)

    @force_full_init
    def clip_frame_indices(self, idx: int) -> List[int]:
        """Frame indices (into the sorted frame list) of item ``idx``, oldest first."""
        end = int(self.clip_ends[idx])
        return list(range(end - self.queue_length + 1, end + 1))

    def get_frame_info(self, frame_idx: int) -> dict:
        """A copy of the info of frame ``frame_idx`` (``sample_idx`` = ``frame_idx``)."""
        self.full_init()
        if not 0 <= frame_idx < self._frame_count():
            raise IndexError(f'frame index {frame_idx} out of range [0, {self._frame_count()})')
        return super().get_data_info(frame_idx)

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """Info of the **last** frame of item ``idx`` plus ``clip_frame_indices`` (list of Q frame indices)."""
        frames = self.clip_frame_indices(idx)
        info = self.get_frame_info(frames[-1])
        info['clip_frame_indices'] = frames
        return info

    @force_full_init
    def get_cat_ids(self, idx: int) -> List[int]:
        """Class indices of the boxes annotated in any frame of item ``idx`` (unconfigured classes left out).

        What mmengine's ``ClassBalancedDataset`` reads to repeat the clips that hold rare classes.
        """
        labels = {inst['bbox_label_3d'] for frame in self.clip_frame_indices(idx)
                  for inst in self.get_frame_info(frame)['instances']}
        labels.discard(-1)
        return sorted(labels)

    def prepare_data(self, idx: int, has_track_gt: bool = True, has_map_gt: bool = True) -> dict:
        """Run the per-frame pipeline on every frame of item ``idx`` and stack the outputs.

        Args:
            idx (int): item index in ``[0, len(self))``.
            has_track_gt (bool): track labels available (False -> empty track GT, flag in the metainfo).
            has_map_gt (bool): map labels available (False -> empty map GT, flag in the metainfo).

        Returns:
            dict: ``inputs['img']`` uint8 Tensor [Q, N, 3, H, W]; ``data_samples`` list of Q Det3DDataSample.
        """
        outputs = []
        for frame_idx in self.clip_frame_indices(idx):
            info = self.get_frame_info(frame_idx)
            info.update(has_track_gt=bool(has_track_gt), has_map_gt=bool(has_map_gt), data_root=self.data_root)
            packed = self.pipeline(info)
            if packed is None:
                raise ValueError(f'the pipeline dropped frame {frame_idx} ({info["token"]}) of item {idx}; '
                                 f'track+map clips need every frame, remove filtering transforms')
            outputs.append(packed)
        return dict(inputs=dict(img=torch.stack([out['inputs']['img'] for out in outputs])),
                    data_samples=[out['data_samples'] for out in outputs])
