"""SceneAwareSampler: whole scenes in frame order per rank, every index once, balanced, world-size independent."""
import random
from itertools import chain, zip_longest

import numpy as np
import pytest
from toy_scene_model import SCENE_SIZES, TemporalMapPredictor, scene_infos, toy_sample

from mmdet3d.registry import DATA_SAMPLERS
from projects.nexusflow.datasets.samplers import SceneAwareSampler, balance_scenes
from projects.nexusflow.evaluation import MapIoUMetric


class SceneDataset:
    """Minimal test dataset: ``get_data_info(i)`` gives scene_token / frame_idx / token / location."""

    def __init__(self, scene_sizes, shuffle_seed=None):
        self.infos = scene_infos(scene_sizes)
        if shuffle_seed is not None:
            random.Random(shuffle_seed).shuffle(self.infos)

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, index):
        return dict(self.infos[index])


def rank_sequences(dataset, world_size):
    return [list(SceneAwareSampler(dataset, rank=r, world_size=world_size)) for r in range(world_size)]


@pytest.mark.parametrize('world_size', [1, 2, 3])
@pytest.mark.parametrize('shuffle_seed', [None, 7])
def test_each_scene_whole_and_in_order_on_one_rank(world_size, shuffle_seed):
    dataset = SceneDataset(SCENE_SIZES, shuffle_seed=shuffle_seed)
    sequences = rank_sequences(dataset, world_size)
    flat = sorted(chain.from_iterable(sequences))
    assert flat == list(range(len(dataset)))  # every index exactly once, no padding
    owner = {}
    for rank, seq in enumerate(sequences):
        scene_runs = []  # (scene, [frame_idx...]) for each maximal run of one scene in this rank's sequence
        for info in (dataset.get_data_info(i) for i in seq):
            if not scene_runs or scene_runs[-1][0] != info['scene_token']:
                scene_runs.append((info['scene_token'], []))
            scene_runs[-1][1].append(info['frame_idx'])
        for scene, frames in scene_runs:
            assert owner.setdefault(scene, rank) == rank  # one run per scene over all ranks ...
            assert frames == list(range(len(frames)))  # ... holding the whole scene in frame order
    assert len(owner) == 7


def test_balance_is_greedy_longest_first_and_deterministic():
    assert balance_scenes([10, 3, 3, 3, 3], 2) == [[0], [1, 2, 3, 4]]
    assert balance_scenes([6, 6, 6, 6], 3) == [[0, 3], [1], [2]]
    assert balance_scenes([5, 9, 2], 1) == [[0, 1, 2]]
    assert balance_scenes([1], 3) == [[0], [], []]
    sampler = SceneAwareSampler(SceneDataset(SCENE_SIZES), rank=0, world_size=2)
    assert sampler.rank_loads() == {0: 17, 1: 16}
    with pytest.raises(ValueError, match='world_size must be >= 1'):
        balance_scenes([3], 0)


def test_more_ranks_than_scenes_leaves_ranks_empty():
    sequences = rank_sequences(SceneDataset([3, 2]), 3)
    assert [len(seq) for seq in sequences] == [3, 2, 0]


def test_built_from_registry_with_runner_default_args():
    default_args = dict(dataset=SceneDataset([2, 3]), seed=0)  # what Runner.build_dataloader passes
    sampler = DATA_SAMPLERS.build(dict(type='NexusFlowSceneAwareSampler'), default_args=default_args)
    assert (sampler.rank, sampler.world_size) == (0, 1)
    assert list(sampler) == [0, 1, 2, 3, 4] and len(sampler) == 5


def test_clear_errors():
    with pytest.raises(TypeError, match='get_data_info'):
        SceneAwareSampler([1, 2, 3], rank=0, world_size=1)
    bad = SceneDataset([2])
    bad.infos[1]['frame_idx'] = 0
    with pytest.raises(ValueError, match='duplicate frame_idx'):
        SceneAwareSampler(bad, rank=0, world_size=1)
    del bad.infos[0]['scene_token']
    with pytest.raises(KeyError, match='scene_token'):
        SceneAwareSampler(bad, rank=0, world_size=1)
    with pytest.raises(ValueError, match='rank must lie in'):
        SceneAwareSampler(SceneDataset([2]), rank=2, world_size=2)


def gather_like_mmengine(parts, size):
    """What mmengine 0.10.7 ``collect_results_cpu/_device`` return on rank 0: rank-interleaved, cut to ``size``."""
    return [r for r in chain.from_iterable(zip_longest(*parts)) if r is not None][:size]


def run_ranks(dataset, index_lists):
    parts = []
    for indices in index_lists:
        metric, model = MapIoUMetric(), TemporalMapPredictor()
        infos = [dataset.get_data_info(i) for i in indices]
        metric.process({}, [toy_sample(info, model(info['scene_token'])) for info in infos])
        parts.append(metric.results)
    return MapIoUMetric().compute_metrics(gather_like_mmengine(parts, len(dataset)))


def test_metrics_identical_for_world_sizes_1_2_3_unlike_contiguous_chunks():
    dataset = SceneDataset(SCENE_SIZES)
    reference = run_ranks(dataset, rank_sequences(dataset, 1))
    for world_size in (2, 3):
        assert run_ranks(dataset, rank_sequences(dataset, world_size)) == reference
    chunks = np.array_split(np.arange(len(dataset)), 2)  # UniAD's test DistributedSampler: contiguous chunks
    assert run_ranks(dataset, [c.tolist() for c in chunks]) != reference


def test_real_test_dataset_whole_scenes_per_rank(synthetic_root, synthetic_infos):
    from projects.nexusflow.datasets import NuScenesTrackMapDataset
    dataset = NuScenesTrackMapDataset(data_root=str(synthetic_root), ann_file=synthetic_infos['val'],
                                      test_mode=True, version='v1.0-synth')
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    scenes = sorted({info['scene_token'] for info in infos})
    assert len(scenes) >= 2
    sequences = rank_sequences(dataset, 2)
    assert sorted(chain.from_iterable(sequences)) == list(range(len(dataset)))
    for seq in sequences:
        for scene in {infos[i]['scene_token'] for i in seq}:
            frames = [infos[i]['frame_idx'] for i in seq if infos[i]['scene_token'] == scene]
            assert frames == list(range(sum(info['scene_token'] == scene for info in infos)))
