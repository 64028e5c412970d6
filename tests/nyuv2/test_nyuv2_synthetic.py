"""The synthetic NYUv2-like generator: exact MTAN format, geometric consistency, determinism, CLI."""
import numpy as np
import pytest

from projects.nexusflow.nyuv2.meta import NUM_CLASSES
from projects.nexusflow.nyuv2.synthetic import camera_matrix, render_sample, sample_rng
from tools.create_data import main as create_data


def load(root, split, index):
    return {folder: np.load(root / split / folder / f'{index}.npy') for folder in ('image', 'label', 'depth', 'normal')}


def test_layout_values_and_invalid_regions(nyuv2_root, nyuv2_meta):
    height, width = nyuv2_meta['img_shape']
    for split, count in (('train', nyuv2_meta['num_train']), ('val', nyuv2_meta['num_val'])):
        assert all(len(list((nyuv2_root / split / folder).glob('*.npy'))) == count
                   for folder in ('image', 'label', 'depth', 'normal'))
    labels = []
    for index in range(nyuv2_meta['num_train']):
        arrays = load(nyuv2_root, 'train', index)
        assert arrays['image'].shape == (height, width, 3) and arrays['image'].dtype == np.float32
        assert arrays['label'].shape == (height, width) and arrays['depth'].shape == (height, width, 1)
        assert arrays['normal'].shape == (height, width, 3)
        assert 0.0 <= arrays['image'].min() and arrays['image'].max() <= 1.0
        labels.append(arrays['label'])
        depth, normal = arrays['depth'][..., 0], arrays['normal']
        assert depth.min() >= 0 and depth.max() < 12.0
        norms = np.linalg.norm(normal, axis=-1)
        np.testing.assert_allclose(norms[depth > 0], 1.0, atol=1e-5)
        assert np.all(norms[depth == 0] == 0), 'invalid depth and invalid normals coincide'
        assert (depth > 0).mean() > 0.8
    classes = np.unique(np.stack(labels))
    assert classes.min() == -1 and classes.max() < NUM_CLASSES and len(classes) >= 8


def backprojected_normals(depth, intrinsics):
    """Normals ``[H-2, W-2, 3]`` from central differences of the back-projected depth, facing the camera."""
    height, width = depth.shape
    rows, cols = np.mgrid[0:height, 0:width]
    points = np.stack([(cols + 0.5 - intrinsics[0, 2]) / intrinsics[0, 0] * depth,
                       (rows + 0.5 - intrinsics[1, 2]) / intrinsics[1, 1] * depth, depth], axis=-1)
    d_col = points[1:-1, 2:] - points[1:-1, :-2]
    d_row = points[2:, 1:-1] - points[:-2, 1:-1]
    normals = np.cross(d_col, d_row)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12
    facing_away = (normals * points[1:-1, 1:-1]).sum(-1, keepdims=True) > 0
    return np.where(facing_away, -normals, normals)


def test_normals_agree_with_depth_gradients_on_planar_regions(nyuv2_root, nyuv2_meta):
    """Back-project the depth through the intrinsics of meta.json; where a 3x3 window has one label and valid depth
    (inside a planar face), the normal of the local surface must match the stored one."""
    meta = nyuv2_meta['intrinsics']
    intrinsics = np.array([[meta['fx'], 0, meta['cx']], [0, meta['fy'], meta['cy']], [0, 0, 1]])
    angles = []
    for index in range(8):
        arrays = load(nyuv2_root, 'train', index)
        depth, label = arrays['depth'][..., 0].astype(np.float64), arrays['label']
        height, width = depth.shape
        interior = np.ones((height - 2, width - 2), dtype=bool)
        for dr in range(3):
            for dc in range(3):
                window_label = label[dr:dr + height - 2, dc:dc + width - 2]
                interior &= (window_label == label[1:-1, 1:-1]) & (depth[dr:dr + height - 2, dc:dc + width - 2] > 0)
        cos = (backprojected_normals(depth, intrinsics) * arrays['normal'][1:-1, 1:-1]).sum(-1)
        angles.append(np.degrees(np.arccos(np.clip(cos[interior], -1, 1))))
    angles = np.concatenate(angles)
    assert len(angles) > 20000
    assert np.median(angles) < 5.0 and np.mean(angles < 10.0) > 0.9


def test_deterministic_per_image_and_seed_dependent(nyuv2_root, nyuv2_meta):
    size = tuple(nyuv2_meta['img_shape'])
    first = render_sample(sample_rng(0, 'train', 3), size)
    again = render_sample(sample_rng(0, 'train', 3), size)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert np.array_equal(first['image'], load(nyuv2_root, 'train', 3)['image']), 'image i depends on (seed, i) only'
    other_seed = render_sample(sample_rng(1, 'train', 3), size)
    assert not np.array_equal(first['depth'], other_seed['depth'])
    assert camera_matrix(288, 384)[0, 0] == pytest.approx(518.8579 * 384 / 640)


def test_create_data_subcommand(nyuv2_root, nyuv2_meta, tmp_path):
    out = tmp_path / 'cli'
    height, width = nyuv2_meta['img_shape']
    create_data(['nyuv2-synthetic', '--out-dir', str(out), '--num-train', '2', '--num-val', '1', '--img-size',
                 str(height), str(width), '--seed', '0'])
    assert sorted(p.name for p in (out / 'val' / 'depth').iterdir()) == ['0.npy']
    for folder in ('image', 'label', 'depth', 'normal'):
        assert np.array_equal(np.load(out / 'train' / folder / '1.npy'), load(nyuv2_root, 'train', 1)[folder])
