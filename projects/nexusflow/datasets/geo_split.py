"""Geographic partial-label split (NuScenes S-Geo / R-Geo of the NexusFlow paper) as a dataset wrapper."""
import copy
from typing import Dict, List, Union

from mmengine.logging import MMLogger

from mmdet3d.registry import DATASETS

CITIES = ('boston', 'singapore')
# split -> task -> cities whose samples carry that task's labels
GEO_SPLITS = {
    'standard': {'track': ('singapore',), 'map': ('boston',)},
    'reversed': {'track': ('boston',), 'map': ('singapore',)},
    'full': {'track': CITIES, 'map': CITIES},
}


def city_of(location: str) -> str:
    """City of a nuScenes location, e.g. ``boston-seaport`` -> ``boston``, ``singapore-onenorth`` -> ``singapore``."""
    city = location.split('-')[0]
    if city not in CITIES:
        raise ValueError(f'location {location!r} belongs to no known city {CITIES}')
    return city


@DATASETS.register_module('NexusFlowGeoSplitDataset')
class GeoSplitDataset:
    """Wraps a :class:`NuScenesTrackMapDataset` and hides one task's labels per city.

    ``split='standard'``: map labels only in Boston, track labels only in Singapore; ``'reversed'``: the opposite;
    ``'full'``: both everywhere. Every item carries ``has_track_gt`` / ``has_map_gt`` in each frame's metainfo and
    the GT of an unlabelled task is empty. Per-city, per-task item counts are logged and kept in ``label_counts``.

    Args:
        dataset (dict | NuScenesTrackMapDataset): the wrapped dataset or its config.
        split (str): ``'standard'``, ``'reversed'`` or ``'full'``.
        lazy_init (bool): defer reading the wrapped dataset until first use.

    Raises:
        ValueError: unknown split, or a split that leaves a task without any labelled item.
    """

    def __init__(self, dataset: Union[dict, object], split: str = 'standard', lazy_init: bool = False):
        if split not in GEO_SPLITS:
            raise ValueError(f'unknown geo split {split!r}; expected one of {sorted(GEO_SPLITS)}')
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.split = split
        self.label_counts: Dict[str, Dict[str, int]] = {}
        self._flags = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's metainfo plus ``geo_split``."""
        meta = copy.deepcopy(self.dataset.metainfo)
        meta['geo_split'] = self.split
        return meta

    def full_init(self) -> None:
        """Initialise the wrapped dataset, compute the per-item label flags, log the counts, check the split."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        labelled = GEO_SPLITS[self.split]
        counts = {city: dict(items=0, track=0, map=0) for city in CITIES}
        self._flags = []
        for idx in range(len(self.dataset)):
            city = city_of(self.dataset.get_data_info(idx)['location'])
            flags = dict(has_track_gt=city in labelled['track'], has_map_gt=city in labelled['map'])
            self._flags.append(flags)
            counts[city]['items'] += 1
            counts[city]['track'] += int(flags['has_track_gt'])
            counts[city]['map'] += int(flags['has_map_gt'])
        self.label_counts = counts
        MMLogger.get_current_instance().info(
            f'GeoSplitDataset({self.split}): ' + '; '.join(
                f'{city}: {c["items"]} items, track labels {c["track"]}, map labels {c["map"]}'
                for city, c in counts.items()))
        for task in ('track', 'map'):
            if sum(c[task] for c in counts.values()) == 0:
                empty = [city for city in labelled[task] if counts[city]['items'] == 0]
                clip = getattr(self.dataset, 'queue_length', 'Q')
                cause = (f'{empty} holds no clip of {clip} consecutive frames: lower queue_length or create scenes '
                         f'with more samples' if empty else 'use another split or data')
                raise ValueError(f'geo split {self.split!r} leaves the {task} task without labelled samples (it '
                                 f'labels {task} only in {labelled[task]}; items per city: '
                                 f'{ {city: c["items"] for city, c in counts.items()} }); {cause}')
        self._fully_initialized = True

    def __len__(self) -> int:
        self.full_init()
        return len(self._flags)

    def label_flags(self, idx: int) -> dict:
        """``{'has_track_gt': bool, 'has_map_gt': bool}`` of item ``idx``."""
        self.full_init()
        return dict(self._flags[idx])

    def get_data_info(self, idx: int) -> dict:
        """The wrapped dataset's info of item ``idx`` with its label flags."""
        info = self.dataset.get_data_info(idx)
        info.update(self.label_flags(idx))
        return info

    def get_cat_ids(self, idx: int) -> List[int]:
        """The wrapped dataset's class indices of item ``idx``; none where the item has no track labels.

        mmengine's ``ClassBalancedDataset`` can wrap this dataset: it repeats the labelled clips that hold rare
        classes and keeps every other item once (mmdet3d's ``CBGSDataset`` cannot: it drops the items without
        boxes, here every item of the city without track labels, and fails on a class without any box).
        """
        return self.dataset.get_cat_ids(idx) if self.label_flags(idx)['has_track_gt'] else []

    def __getitem__(self, idx: int) -> dict:
        return self.dataset.prepare_data(idx, **self.label_flags(idx))
