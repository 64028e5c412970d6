"""Partial-label protocols: exact counts, balance, determinism, clustering quality, mask files."""
import numpy as np
import pytest
import torch

from projects.nexusflow.nyuv2.protocols import (balanced_kmeans, cluster_features, cluster_mask, label_counts,
                                                load_label_mask, onelabel_mask, protocol_mask, randomlabels_mask)

NYU_TRAIN = 795


def test_onelabel_is_exact_balanced_and_seeded():
    mask = onelabel_mask(NYU_TRAIN, seed=0)
    assert mask.shape == (NYU_TRAIN, 3) and mask.dtype == bool
    assert np.all(mask.sum(1) == 1)
    assert label_counts(mask) == dict(seg=265, depth=265, normal=265, with_0=0, with_1=795, with_2=0, with_3=0)
    assert np.array_equal(mask, onelabel_mask(NYU_TRAIN, seed=0))
    assert not np.array_equal(mask, onelabel_mask(NYU_TRAIN, seed=1))
    assert sorted(onelabel_mask(10, seed=3).sum(0)) == [3, 3, 4]


def test_randomlabels_follow_mtpsl_statistics():
    """MTPSL's randomlabels.pth: 405 images with one label and 390 with two (per task 392 / 408 / 385)."""
    mask = randomlabels_mask(NYU_TRAIN, seed=0)
    counts = label_counts(mask)
    assert (counts['with_0'], counts['with_1'], counts['with_2'], counts['with_3']) == (0, 405, 390, 0)
    assert (counts['seg'], counts['depth'], counts['normal']) == (395, 395, 395)
    assert np.array_equal(mask, randomlabels_mask(NYU_TRAIN, seed=0))
    assert not np.array_equal(mask, randomlabels_mask(NYU_TRAIN, seed=5))


def blobs(sizes, seed=0):
    """Well separated Gaussian blobs in 4-d, rows shuffled; returns (features, blob id)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(4)[:len(sizes)] * 10.0
    ids = np.concatenate([np.full(n, k) for k, n in enumerate(sizes)])
    order = rng.permutation(len(ids))
    return (centres[ids] + rng.normal(scale=0.3, size=(len(ids), 4)))[order], ids[order]


def test_balanced_kmeans_recovers_equal_blobs_and_balances_unequal_ones():
    features, ids = blobs((12, 12, 12))
    assign = balanced_kmeans(features, 3, seed=0)
    # a perfect clustering: every cluster is exactly one blob
    assert sorted((len(set(ids[assign == c])), int((assign == c).sum())) for c in range(3)) == [(1, 12)] * 3
    unequal, _ = blobs((6, 12, 19))
    sizes = np.bincount(balanced_kmeans(unequal, 3, seed=0), minlength=3)
    assert sorted(sizes.tolist()) == [12, 12, 13]
    assert np.array_equal(balanced_kmeans(unequal, 3, seed=0), balanced_kmeans(unequal, 3, seed=0))


def test_cluster_mask_one_task_per_cluster_in_order_of_first_member():
    features, ids = blobs((12, 12, 12))
    mask = cluster_mask(features, seed=0)
    assert np.all(mask.sum(1) == 1) and mask.sum(0).tolist() == [12, 12, 12]
    tasks = mask.argmax(1)
    assert tasks[0] == 0, 'the cluster of image 0 keeps the seg labels'
    assert all(len(set(tasks[ids == blob])) == 1 for blob in range(3))


def test_cluster_features_layout():
    image = np.zeros((8, 12, 3), dtype=np.float32)
    image[:, 6:] = 1.0  # left half black, right half white
    feats = cluster_features(image)
    assert feats.shape == (64 + 48, )
    hist = feats[:64]**2
    assert hist[0] == pytest.approx(0.5) and hist[63] == pytest.approx(0.5)
    thumb = feats[64:].reshape(6, 8) * np.sqrt(48)
    assert np.allclose(thumb[:, :4], 0.0) and np.allclose(thumb[:, 4:], 1.0, atol=1e-3)


def test_mask_files_and_errors(tmp_path):
    weights = torch.tensor(onelabel_mask(12, seed=0), dtype=torch.float32)
    torch.save({'labels_weights': weights}, tmp_path / 'onelabel.pth')
    assert np.array_equal(load_label_mask(str(tmp_path / 'onelabel.pth'), 12), weights.numpy().astype(bool))
    np.save(tmp_path / 'bad.npy', np.full((12, 3), 2.0))
    with pytest.raises(ValueError, match='0 or 1'):
        load_label_mask(str(tmp_path / 'bad.npy'), 12)
    with pytest.raises(ValueError, match=r'\(13, 3\)'):
        load_label_mask(str(tmp_path / 'onelabel.pth'), 13)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_label_mask(str(tmp_path / 'missing.pth'), 12)
    with pytest.raises(ValueError, match='unknown label protocol'):
        protocol_mask('half', 12)
    with pytest.raises(ValueError, match="'cluster' needs features"):
        protocol_mask('cluster', 12)
    with pytest.raises(ValueError, match=r"no labelled image for \['normal'\]"):
        protocol_mask('onelabel', 2)
