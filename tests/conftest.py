"""Shared fixtures: one small synthetic nuScenes set (and its info pkls) per test session."""
import os

import pytest
import torch

import projects.nexusflow.registration  # noqa: F401  (every test may build any registered module)

# The in-process tests run tiny tensors: one intra-op thread is as fast as two and immune to oversubscription.
# The end-to-end tests train in subprocesses, which use every core.
torch.set_num_threads(max(1, int(os.environ.get('TEST_NUM_THREADS', '1'))))


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: trains or launches several processes (> ~20 s); the quick tier '
                            '`pytest -m "not slow" tests` leaves it out')


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """A small synthetic dataset: 2 scenes per city, 6 keyframes each, 400x225 images."""
    from projects.nexusflow.datasets.synthetic import generate_synthetic_nuscenes
    root = tmp_path_factory.mktemp('nuscenes-synth')
    generate_synthetic_nuscenes(str(root), scenes_per_city=2, samples_per_scene=6, seed=0, img_size=(400, 225))
    return root


@pytest.fixture(scope='session')
def synthetic_infos(synthetic_root):
    """Info pkls of ``synthetic_root``: ``{'train': path, 'val': path}``."""
    from projects.nexusflow.datasets.converter import create_nuscenes_infos
    paths = create_nuscenes_infos(str(synthetic_root), 'v1.0-synth', str(synthetic_root),
                                  canbus_root=str(synthetic_root))
    return paths
