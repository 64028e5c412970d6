"""``NYUv2Dataset``: the preprocessed NYUv2 of MTAN / MTPSL (``root/{train,val}/{image,label,depth,normal}/{i}.npy``)
with a partial-label protocol that sets per-sample task flags.

Each data info is ``{'sample_idx': i, 'img_path', 'label_path', 'depth_path', 'normal_path': str,
'has_seg', 'has_depth', 'has_normal': bool}``; the pipeline (:class:`LoadNYUv2Sample` first) reads the arrays and
replaces the ground truth of every unlabelled task by its ignore value, so a masked task cannot leak into a loss.
"""
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from mmdet3d.registry import DATASETS, TRANSFORMS
from ..meta import NYU13_CLASSES, SPLITS, TASK_FLAGS, TASKS
from ..protocols import PROTOCOLS, cluster_features, label_counts, protocol_mask
from .arrays import check_split_headers, split_file_paths


@DATASETS.register_module('NexusFlowNYUv2Dataset')
class NYUv2Dataset(BaseDataset):
    """NYUv2 (13-class segmentation, depth, surface normals) with a partial-label protocol.

    Args:
        data_root (str): folder holding ``train/`` and ``val/``.
        split (str): ``'train'`` or ``'val'``.
        protocol (str): which labels each image keeps: ``'full'``, ``'cluster'`` (NexusFlow), ``'onelabel'`` or
            ``'randomlabels'`` (MTPSL); see :mod:`projects.nexusflow.nyuv2.protocols`. Evaluate with ``'full'``.
        protocol_seed (int): seed of the protocol (the same seed gives the same mask on every machine).
        label_mask_file (str, optional): MTPSL ``.pth`` or ``.npy`` ``[N, 3]`` mask that replaces the generated one.
        img_shape (tuple, optional): required ``(H, W)`` of every array; default the size of ``image/0.npy``.
        check_files (bool): check the shape of every file from its ``.npy`` header at start-up (no pixel read).
        pipeline (list): transforms (built from the mmdet3d registry), starting with ``LoadNYUv2Sample``.
        test_mode (bool): mmengine test mode flag.
        indices (int | Sequence[int], optional): keep a subset (after the protocol was computed on the whole split).
        serialize_data (bool): serialise the data list (saves memory across workers).
        lazy_init (bool): defer scanning the folder until first use.
        max_refetch (int): mmengine's refetch limit.
        metainfo (dict, optional): overrides of ``METAINFO``.

    Raises:
        ValueError: unknown split or protocol; a malformed file (the message names it and the expected shape).
        FileNotFoundError: the split, one of its folders or one of its files is missing.
    """
    METAINFO = dict(classes=NYU13_CLASSES, tasks=TASKS)

    def __init__(self, data_root: str, split: str = 'train', protocol: str = 'full', protocol_seed: int = 0,
                 label_mask_file: Optional[str] = None, img_shape: Optional[Tuple[int, int]] = None,
                 check_files: bool = True, pipeline: Sequence[Union[dict, Callable]] = (), test_mode: bool = False,
                 indices: Optional[Union[int, Sequence[int]]] = None, serialize_data: bool = True,
                 lazy_init: bool = False, max_refetch: int = 1000, metainfo: Optional[dict] = None) -> None:
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        if protocol not in PROTOCOLS:
            raise ValueError(f'protocol must be one of {PROTOCOLS}, got {protocol!r}')
        self.split = split
        self.protocol = protocol
        self.protocol_seed = protocol_seed
        self.label_mask_file = label_mask_file
        self.img_shape = None if img_shape is None else (int(img_shape[0]), int(img_shape[1]))
        self.check_files = check_files
        self.label_mask = np.zeros((0, len(TASKS)), dtype=bool)
        transforms = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(ann_file='', metainfo=metainfo, data_root=data_root, data_prefix=dict(), indices=indices,
                         serialize_data=serialize_data, pipeline=transforms, test_mode=test_mode,
                         lazy_init=lazy_init, max_refetch=max_refetch)

    def load_data_list(self) -> List[dict]:
        """Scan ``<data_root>/<split>``, check its files, apply the protocol and log the label counts."""
        paths = split_file_paths(osp.join(self.data_root, self.split))
        if self.check_files:
            self.img_shape = check_split_headers(paths, self.img_shape)
        features = None
        if self.protocol == 'cluster' and self.label_mask_file is None:
            features = np.stack([cluster_features(np.load(sample['img_path'])) for sample in paths])
        self.label_mask = protocol_mask(self.protocol, len(paths), self.protocol_seed, features,
                                        self.label_mask_file)
        counts = label_counts(self.label_mask)
        MMLogger.get_current_instance().info(
            f'NYUv2Dataset({self.split}, protocol={self.protocol}, seed={self.protocol_seed}): {len(paths)} images; '
            + ', '.join(f'{k}={v}' for k, v in counts.items()))
        return [dict(sample, sample_idx=index, **{TASK_FLAGS[task]: bool(flag) for task, flag in zip(TASKS, row)})
                for index, (sample, row) in enumerate(zip(paths, self.label_mask))]
