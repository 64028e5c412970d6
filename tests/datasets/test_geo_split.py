"""GeoSplitDataset: per-city label flags, empty GT of the unlabelled task, counts, refusal of degenerate splits."""
import pytest
from mmengine.registry import DefaultScope

from mmdet3d.registry import DATASETS
from projects.nexusflow.datasets import GeoSplitDataset, NuScenesTrackMapDataset
from projects.nexusflow.datasets.geo_split import city_of

RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
PIPELINE = [dict(type='NexusFlowLoadMultiViewImages'), dict(type='NexusFlowResizeMultiViewImages', scale=(100, 56)),
            dict(type='NexusFlowLoadTrackAnnotations3D'),
            dict(type='NexusFlowTrackObjectRangeFilter', point_cloud_range=RANGE),
            dict(type='NexusFlowLoadMapAnnotations', pc_range=RANGE, canvas_size=(25, 25), line_thickness=1),
            dict(type='NexusFlowPackTrackMapInputs')]


def dataset_cfg(synthetic_root, synthetic_infos, **kwargs):
    return dict(type='NexusFlowNuScenesTrackMapDataset', data_root=str(synthetic_root),
                ann_file=synthetic_infos['train'], pipeline=PIPELINE, queue_length=2, **kwargs)


@pytest.fixture(scope='module')
def inner(synthetic_root, synthetic_infos):
    return DATASETS.build(dataset_cfg(synthetic_root, synthetic_infos))


def _items_per_city(dataset):
    cities = [city_of(dataset.get_data_info(i)['location']) for i in range(len(dataset))]
    return {city: cities.count(city) for city in ('boston', 'singapore')}


@pytest.mark.parametrize('split, track_cities, map_cities', [
    ('standard', {'singapore'}, {'boston'}),
    ('reversed', {'boston'}, {'singapore'}),
    ('full', {'boston', 'singapore'}, {'boston', 'singapore'}),
])
def test_flags_counts_and_empty_gt(inner, split, track_cities, map_cities):
    geo = GeoSplitDataset(inner, split=split)
    per_city = _items_per_city(inner)
    assert len(geo) == len(inner) and min(per_city.values()) > 0
    for city, items in per_city.items():
        assert geo.label_counts[city] == dict(items=items, track=items * (city in track_cities),
                                              map=items * (city in map_cities))
    seen = set()
    for idx in range(len(geo)):
        city = city_of(geo.get_data_info(idx)['location'])
        if city in seen:
            continue
        seen.add(city)
        item = geo[idx]
        for sample in item['data_samples']:
            assert sample.has_track_gt == (city in track_cities) and sample.has_map_gt == (city in map_cities)
            if city not in track_cities:
                assert len(sample.gt_instances_3d) == 0 and sample.gt_instances_3d.bboxes_3d.tensor.shape == (0, 9)
            else:
                assert len(sample.gt_instances_3d) > 0
            if city not in map_cities:
                assert sample.gt_map_instances.masks.shape == (0, 25, 25)
            else:
                assert sample.gt_map_instances.labels[-1] == 3
        info = geo.get_data_info(idx)
        assert info['has_track_gt'] == (city in track_cities) and info['has_map_gt'] == (city in map_cities)
    assert seen == {'boston', 'singapore'}
    assert geo.metainfo['geo_split'] == split and geo.metainfo['classes'] == inner.metainfo['classes']


def test_refuses_split_without_labels_for_a_task(synthetic_root, synthetic_infos, inner):
    boston_frames = [i for i in range(inner.num_frames) if inner.get_frame_info(i)['location'].startswith('boston')]
    cfg = dict(type='NexusFlowGeoSplitDataset',
               dataset=dataset_cfg(synthetic_root, synthetic_infos, indices=boston_frames))
    with pytest.raises(ValueError, match='track task'):
        DATASETS.build(dict(cfg, split='standard'))
    with pytest.raises(ValueError, match='map task'):
        DATASETS.build(dict(cfg, split='reversed'))
    assert len(DATASETS.build(dict(cfg, split='full'))) > 0
    with pytest.raises(ValueError, match='unknown geo split'):
        GeoSplitDataset(inner, split='boston-only')


def test_lazy_init_and_city_names(synthetic_root, synthetic_infos):
    geo = GeoSplitDataset(dataset_cfg(synthetic_root, synthetic_infos, lazy_init=True), lazy_init=True)
    assert isinstance(geo.dataset, NuScenesTrackMapDataset) and not geo.dataset._fully_initialized
    assert len(geo) > 0 and geo.label_flags(0) in ({'has_track_gt': True, 'has_map_gt': False},
                                                   {'has_track_gt': False, 'has_map_gt': True})
    assert city_of('singapore-hollandvillage') == 'singapore' and city_of('boston-seaport') == 'boston'
    with pytest.raises(ValueError, match='no known city'):
        city_of('pittsburgh-downtown')


def test_class_balanced_dataset_repeats_rare_labelled_clips_keeps_every_item(synthetic_root, synthetic_infos, inner):
    """mmengine's ClassBalancedDataset over the geo split: ``get_cat_ids`` is what it reads; the items without
    track labels count for no class and are kept once."""
    split = 'standard'
    for idx in range(len(inner)):
        frames = inner.clip_frame_indices(idx)
        expected = {inst['bbox_label_3d'] for f in frames for inst in inner.get_frame_info(f)['instances']} - {-1}
        assert inner.get_cat_ids(idx) == sorted(expected)
    geo = GeoSplitDataset(inner, split=split)
    counts = {}
    for idx in range(len(geo)):
        cats = geo.get_cat_ids(idx)
        assert cats == (inner.get_cat_ids(idx) if geo.label_flags(idx)['has_track_gt'] else [])
        for cat in cats:
            counts[cat] = counts.get(cat, 0) + 1
    frequency = {cat: count / len(geo) for cat, count in counts.items()}
    # between the rarest and the most frequent class, or 1 if all are equally frequent (every labelled class then
    # counts as rare: under 'standard' a class is at most in the labelled half of the items)
    threshold = (min(frequency.values()) + max(frequency.values())) / 2 if len(set(counts.values())) > 1 else 1.0
    with DefaultScope.overwrite_default_scope('mmdet3d'):  # as in a run: mmengine's wrapper builds our dataset
        balanced = DATASETS.build(dict(type='ClassBalancedDataset', oversample_thr=threshold,
                                       dataset=dict(type='NexusFlowGeoSplitDataset', split=split,
                                                    dataset=dataset_cfg(synthetic_root, synthetic_infos))))
    repeats = [balanced.repeat_indices.count(idx) for idx in range(len(geo))]
    for idx, count in enumerate(repeats):
        rare = any(frequency[cat] < threshold for cat in geo.get_cat_ids(idx))
        assert (count > 1) == rare, (idx, count, geo.get_cat_ids(idx))
    assert max(repeats) > 1 and min(repeats) == 1
    item = balanced[repeats.index(max(repeats))]
    assert all(sample.has_track_gt for sample in item['data_samples'])
