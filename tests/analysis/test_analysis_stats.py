"""MMD over random subsets, PCA scree, t-SNE / scree figures and the report on hand-made feature sets."""
import json

import cv2
import numpy as np
import pytest

from projects.nexusflow.analysis import (FeatureCollection, analyze_collection, components_for_variance,
                                         format_table, mmd, pca_scree, plot_scree, plot_tsne, split_mmd, subset_mmd,
                                         tsne_embedding)


def gaussian(n, d, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_subset_mmd_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    x = gaussian(120, 4, seed=1)
    same = subset_mmd(x, gaussian(120, 4, seed=2), num_subsets=8, subset_size=60, seed=0)
    shifted = subset_mmd(x, gaussian(120, 4, shift=1.0, seed=2), num_subsets=8, subset_size=60, seed=0)
    far = subset_mmd(x, gaussian(120, 4, shift=3.0, seed=2), num_subsets=8, subset_size=60, seed=0)
    assert abs(same['mean']) < 0.02 and same['std'] < 0.02
    assert shifted['mean'] > 0.2 and far['mean'] > shifted['mean'] + 0.2
    assert (same['subset_size'], same['num_subsets'], len(same['values'])) == (60, 8, 8)
    assert same['std'] == pytest.approx(np.std(same['values']), abs=1e-15)


def test_subset_draws_are_fixed_by_the_seed():
    x, y = gaussian(30, 3, seed=3), gaussian(25, 3, shift=0.5, seed=4)
    first = subset_mmd(x, y, num_subsets=4, seed=7)
    assert first == subset_mmd(x, y, num_subsets=4, seed=7)
    assert first['values'] != subset_mmd(x, y, num_subsets=4, seed=8)['values']
    assert first['subset_size'] == 12  # default: half of the smaller group
    rng = np.random.default_rng(7)  # the first draw, by hand
    rows_x, rows_y = np.sort(rng.choice(30, 12, replace=False)), np.sort(rng.choice(25, 12, replace=False))
    assert first['values'][0] == mmd(x[rows_x], y[rows_y])


def test_split_mmd_reference_and_errors():
    ref = split_mmd(gaussian(200, 4, seed=5), num_subsets=6, seed=0)
    assert ref['subset_size'] == 100 and abs(ref['mean']) < 0.02
    with pytest.raises(ValueError, match=r'subset_size must lie in \[2, 5\]'):
        split_mmd(gaussian(10, 2), subset_size=6)
    with pytest.raises(ValueError, match=r'subset_size must lie in \[2, 3\]'):
        subset_mmd(gaussian(3, 2), gaussian(9, 2), subset_size=4)
    with pytest.raises(ValueError, match='num_subsets must be >= 1'):
        subset_mmd(gaussian(9, 2), gaussian(9, 2), num_subsets=0)


def data_with_spectrum(eigenvalues, n=50, seed=0):
    """``[n, d]`` rows whose sample covariance has exactly ``eigenvalues`` (random orientation)."""
    rng = np.random.default_rng(seed)
    d = len(eigenvalues)
    centred = rng.normal(size=(n, d))
    basis, _ = np.linalg.qr(centred - centred.mean(axis=0))  # orthonormal columns, each with zero mean
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return basis * np.sqrt((n - 1) * np.asarray(eigenvalues)) @ rotation.T + rng.normal(size=d)


def test_pca_scree_recovers_a_known_spectrum():
    eigenvalues = [8.0, 4.0, 2.0, 1.0, 0.5, 0.5]
    scree = pca_scree(data_with_spectrum(eigenvalues))
    assert scree['eigenvalues'] == pytest.approx(eigenvalues, rel=1e-9)
    assert scree['explained_variance_ratio'] == pytest.approx(np.array(eigenvalues) / 16.0, rel=1e-9)
    assert scree['cumulative'][-1] == pytest.approx(1.0)
    assert components_for_variance(scree['cumulative'], 0.9) == 4  # 15/16 >= 0.9 > 14/16
    assert components_for_variance(scree['cumulative'], 0.5) == 1
    assert len(pca_scree(gaussian(4, 10))['eigenvalues']) == 3  # rank <= n - 1
    truncated = pca_scree(data_with_spectrum(eigenvalues), max_components=2)
    assert truncated['explained_variance_ratio'] == pytest.approx([0.5, 0.25])
    with pytest.raises(ValueError, match='zero variance'):
        pca_scree(np.ones((5, 3)))


def test_tsne_separates_clusters_deterministically_and_the_figures_are_pngs(tmp_path):
    feats = dict(track=gaussian(15, 8, seed=1), map=gaussian(15, 8, shift=6.0, seed=2))
    cities = ['boston'] * 8 + ['singapore'] * 7
    out = plot_tsne(feats, cities, str(tmp_path / 'tsne.png'), seed=3)
    points = out['points']
    assert points.shape == (30, 2) and out['tasks'][:15] == ['track'] * 15 and out['cities'][15:] == cities
    gap = np.linalg.norm(points[:15].mean(0) - points[15:].mean(0))
    spread = max(points[:15].std(0).max(), points[15:].std(0).max())
    assert gap > 3 * spread
    np.testing.assert_array_equal(points, tsne_embedding(np.concatenate(list(feats.values())), seed=3))
    assert cv2.imread(out['path']).shape == (460, 1000, 3)
    scree = plot_scree({'a': [0.6, 0.3, 0.1]}, str(tmp_path / 'sub' / 'scree.png'))
    assert cv2.imread(scree).shape == (440, 640, 3)
    with pytest.raises(ValueError, match='same S = 15 samples and the same d'):
        plot_tsne(dict(a=gaussian(15, 8), b=gaussian(15, 4)), cities, str(tmp_path / 'x.png'))


def test_report_on_a_hand_made_collection(tmp_path):
    cities = ['boston'] * 12 + ['singapore'] * 12
    shifted = np.concatenate([gaussian(12, 4, seed=1), gaussian(12, 4, shift=2.0, seed=2)])
    collection = FeatureCollection(
        samples=[dict(token=str(i), scene_name='s', location=f'{c}-x', frame_idx=i, city=c)
                 for i, c in enumerate(cities)],
        features={'taps/a': shifted.astype(np.float32), 'taps/b': gaussian(24, 4, seed=3).astype(np.float32),
                  'latents/a': gaussian(24, 2, seed=4).astype(np.float32)})
    summary = analyze_collection(collection, str(tmp_path), num_subsets=5, seed=0)
    json.dumps(summary)  # serialisable as written by the tool
    assert summary['cities'] == {'boston': 12, 'singapore': 12} and summary['num_samples'] == 24
    city_a = summary['features']['taps/a']['mmd_city']['boston~singapore']
    city_b = summary['features']['taps/b']['mmd_city']['boston~singapore']
    assert city_a['mean'] > 0.3 > city_b['mean'] and city_a['subset_size'] == 6
    assert city_a == subset_mmd(shifted[:12].astype(np.float32), shifted[12:].astype(np.float32), num_subsets=5,
                                seed=0)
    assert set(summary['mmd_task']) == {'taps/a~b'}  # the single-task group has no pair
    assert set(summary['figures']) == {'scree', 'tsne_taps', 'tsne_latents'}
    assert summary['features']['latents/a']['pca']['components_90'] in (1, 2)
    table = format_table(summary)
    assert table.splitlines()[0].split() == ['feature', 'set', 'dim', 'mean', 'norm', 'std/dim', 'MMD',
                                             'boston~singapore', 'MMD', 'ref', '(random', 'halves)', 'PCA', 'comps',
                                             '90%']
    entry = summary['features']['taps/a']
    values = collection.features['taps/a']
    assert entry['mean_norm'] == pytest.approx(float(np.linalg.norm(values, axis=1).mean()))
    assert entry['mean_std'] == pytest.approx(float(values.std(axis=0).mean()))
    assert f'{city_a["mean"]:.4f} +- {city_a["std"]:.4f}' in table and 'taps/a~b' in table
