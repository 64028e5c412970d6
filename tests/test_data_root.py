"""One data root: DATA_ROOT moves every loader of every config, and the metrics follow the dataset they evaluate."""
from glob import glob
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.evaluator import Evaluator

import projects.nexusflow.registration  # noqa: F401  (registers everything)
from mmdet3d.registry import DATASETS, METRICS
from projects.nexusflow.evaluation.result_utils import dataset_setting

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(glob(str(REPO / 'configs' / 'uniad_nexusflow' / '*.py'))) + [
    str(REPO / 'configs' / 'uniad_nexusflow' / 'reproduce' / 'tiny_pretrain_track.py')]
TINY = str(REPO / 'configs' / 'uniad_nexusflow' / 'tiny_uniad_sgeo.py')


def datasets(cfg):
    """``{dotted key: dataset dict}`` of the innermost datasets of the three dataloaders."""
    found = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        key, dataset = f'{loader}.dataset', cfg[loader]['dataset']
        while 'dataset' in dataset:
            key, dataset = key + '.dataset', dataset['dataset']
        found[key] = dataset
    return found


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: Path(p).name)
def test_data_root_environment_variable_moves_every_loader_and_no_metric_holds_a_root(path, monkeypatch):
    monkeypatch.setenv('DATA_ROOT', '/elsewhere/nuscenes/')
    cfg = Config.fromfile(path)
    assert cfg.data_root == '/elsewhere/nuscenes/'
    found = datasets(cfg)
    assert len(found) == 3 and {ds['data_root'] for ds in found.values()} == {'/elsewhere/nuscenes/'}, found
    for name in ('val_evaluator', 'test_evaluator'):
        for metric in cfg[name]:
            assert not {'data_root', 'ann_file', 'version'} & set(metric), (name, metric)
    monkeypatch.delenv('DATA_ROOT')
    default = Config.fromfile(path).data_root
    assert default in ('data/nuscenes/', 'data/nuscenes-synth/')


def test_metrics_of_a_config_evaluate_the_dataset_of_data_root(synthetic_root, synthetic_infos, monkeypatch):
    """What the runner does: the test dataset of the config, its metainfo as the evaluator's dataset_meta."""
    monkeypatch.setenv('DATA_ROOT', str(synthetic_root))  # no trailing slash: the datasets join paths
    cfg = Config.fromfile(TINY)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    evaluator = Evaluator([METRICS.build(metric) for metric in cfg.test_evaluator])
    evaluator.dataset_meta = dataset.metainfo
    devkit_metrics = [m for m in evaluator.metrics if type(m).__name__ != 'MapIoUMetric']
    assert len(devkit_metrics) == 2
    for metric in devkit_metrics:
        assert dataset_setting(metric, 'data_root') == str(synthetic_root)
        assert dataset_setting(metric, 'ann_file') == synthetic_infos['val']
        assert dataset_setting(metric, 'version') == 'v1.0-synth' == dataset.metainfo['version']
    assert dataset.metainfo['eval_set'] == 'synth_val'
