"""NYUv2Dataset + transforms: protocol flags, emptied GT of unlabelled tasks, RandomScaleCrop, clear errors."""
import shutil

import numpy as np
import pytest
import torch

from projects.nexusflow.nyuv2.datasets import NYUv2Dataset, RandomScaleCrop

TRAIN_PIPELINE = [dict(type='NexusFlowLoadNYUv2Sample'), dict(type='NexusFlowRandomScaleCrop'),
                  dict(type='NexusFlowPackNYUv2Inputs')]
TEST_PIPELINE = [dict(type='NexusFlowLoadNYUv2Sample'), dict(type='NexusFlowPackNYUv2Inputs')]


def raw(root, index, split='train'):
    return {folder: np.load(root / split / folder / f'{index}.npy') for folder in ('image', 'label', 'depth', 'normal')}


def test_test_pipeline_packs_the_arrays_unchanged(nyuv2_root, nyuv2_meta):
    dataset = NYUv2Dataset(str(nyuv2_root), split='val', pipeline=TEST_PIPELINE, test_mode=True)
    assert len(dataset) == nyuv2_meta['num_val'] and dataset.img_shape == tuple(nyuv2_meta['img_shape'])
    assert dataset.metainfo['classes'][11] == 'wall'
    item, arrays = dataset[5], raw(nyuv2_root, 5, 'val')
    sample = item['data_samples']
    assert item['inputs'].shape == (3, ) + dataset.img_shape and item['inputs'].dtype == torch.float32
    assert torch.equal(item['inputs'], torch.from_numpy(arrays['image']).permute(2, 0, 1))
    assert torch.equal(sample.gt_sem_seg.data[0], torch.from_numpy(arrays['label']).long())
    assert torch.equal(sample.gt_depth.data, torch.from_numpy(arrays['depth']).permute(2, 0, 1))
    assert torch.equal(sample.gt_normal.data, torch.from_numpy(arrays['normal']).permute(2, 0, 1))
    assert (sample.has_seg, sample.has_depth, sample.has_normal) == (True, True, True)
    assert sample.img_shape == dataset.img_shape


def test_onelabel_flags_empty_the_unlabelled_ground_truth(nyuv2_root):
    dataset = NYUv2Dataset(str(nyuv2_root), protocol='onelabel', protocol_seed=3, pipeline=TEST_PIPELINE)
    assert dataset.label_mask.sum(0).tolist() == [8, 8, 8]
    for index in range(len(dataset)):
        sample, arrays = dataset[index]['data_samples'], raw(nyuv2_root, index)
        flags = (sample.has_seg, sample.has_depth, sample.has_normal)
        assert flags == tuple(dataset.label_mask[index]) and sum(flags) == 1
        seg, depth, normal = sample.gt_sem_seg.data, sample.gt_depth.data, sample.gt_normal.data
        assert torch.equal(seg[0], torch.from_numpy(arrays['label']).long()) if flags[0] else bool((seg == -1).all())
        assert bool((depth > 0).any()) if flags[1] else bool((depth == 0).all())
        assert bool((normal != 0).any()) if flags[2] else bool((normal == 0).all())
    subset = NYUv2Dataset(str(nyuv2_root), protocol='onelabel', protocol_seed=3, pipeline=TEST_PIPELINE,
                          indices=[4, 9])
    assert [subset.get_data_info(i)['has_depth'] for i in range(2)] == dataset.label_mask[[4, 9], 1].tolist()


def test_cluster_protocol_and_mask_file(nyuv2_root, tmp_path):
    cluster = NYUv2Dataset(str(nyuv2_root), protocol='cluster', pipeline=TEST_PIPELINE)
    assert cluster.label_mask.sum(0).tolist() == [8, 8, 8] and np.all(cluster.label_mask.sum(1) == 1)
    assert np.array_equal(cluster.label_mask,
                          NYUv2Dataset(str(nyuv2_root), protocol='cluster', pipeline=TEST_PIPELINE).label_mask)
    weights = np.zeros((24, 3), dtype=np.float32)
    weights[:, 2] = 1.0
    weights[0] = 1.0
    torch.save({'labels_weights': torch.from_numpy(weights)}, tmp_path / 'mask.pth')
    from_file = NYUv2Dataset(str(nyuv2_root), protocol='onelabel', label_mask_file=str(tmp_path / 'mask.pth'),
                             pipeline=TEST_PIPELINE)
    assert np.array_equal(from_file.label_mask, weights.astype(bool))


def test_random_scale_crop_matches_mtpsl():
    """Scale s: a window of (int(H / s), int(W / s)) resized back; labels and depth by nearest neighbour, depth / s."""
    rng = np.random.default_rng(0)
    height, width = 12, 16
    results = dict(img=rng.random((height, width, 3), dtype=np.float32),
                   gt_seg=rng.integers(-1, 13, (height, width)), gt_depth=rng.uniform(1, 5, (height, width)).astype(
                       np.float32), gt_normal=rng.normal(size=(height, width, 3)).astype(np.float32))
    identity = RandomScaleCrop(scales=(1.0, ))(dict(results))
    assert identity['crop_box'] == (0, 0, height, width)
    for key in ('img', 'gt_seg', 'gt_depth', 'gt_normal'):
        np.testing.assert_allclose(identity[key], results[key], atol=1e-6)
    np.random.seed(0)
    zoomed = RandomScaleCrop(scales=(1.5, ))(dict(results))
    top, left, crop_h, crop_w = zoomed['crop_box']
    assert (crop_h, crop_w) == (8, 10) and zoomed['crop_scale'] == 1.5
    window = (slice(top, top + crop_h), slice(left, left + crop_w))
    rows = np.floor(np.arange(height) * crop_h / height).astype(int)
    cols = np.floor(np.arange(width) * crop_w / width).astype(int)
    np.testing.assert_array_equal(zoomed['gt_seg'], results['gt_seg'][window][np.ix_(rows, cols)])
    np.testing.assert_allclose(zoomed['gt_depth'], results['gt_depth'][window][np.ix_(rows, cols)] / 1.5, rtol=1e-6)
    # bilinear with align_corners: the four corners of the window land on the four image corners
    np.testing.assert_allclose(zoomed['img'][[0, -1]][:, [0, -1]],
                               results['img'][window][[0, -1]][:, [0, -1]], atol=1e-6)
    with pytest.raises(ValueError, match='>= 1'):
        RandomScaleCrop(scales=(0.5, ))


def test_training_items_keep_size_and_flags(nyuv2_root):
    dataset = NYUv2Dataset(str(nyuv2_root), protocol='randomlabels', pipeline=TRAIN_PIPELINE)
    item = dataset[0]
    assert item['inputs'].shape[1:] == dataset.img_shape
    assert item['data_samples'].crop_scale in (1.0, 1.2, 1.5)
    assert item['data_samples'].gt_depth.data.shape == (1, ) + dataset.img_shape


def broken_copy(nyuv2_root, tmp_path):
    root = tmp_path / 'broken'
    shutil.copytree(nyuv2_root / 'val', root / 'val')
    return root


def test_clear_errors(nyuv2_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere/train does not exist'):
        NYUv2Dataset(str(tmp_path / 'nowhere'))
    root = broken_copy(nyuv2_root, tmp_path)
    shutil.rmtree(root / 'val' / 'normal')
    with pytest.raises(FileNotFoundError, match='normal is missing'):
        NYUv2Dataset(str(root), split='val')
    root = broken_copy(nyuv2_root, tmp_path / 'b')
    (root / 'val' / 'label' / '3.npy').unlink()
    with pytest.raises(FileNotFoundError, match=r'label/3\.npy is missing'):
        NYUv2Dataset(str(root), split='val')
    root = broken_copy(nyuv2_root, tmp_path / 'c')
    depth = root / 'val' / 'depth' / '2.npy'
    np.save(depth, np.load(depth)[..., 0])
    with pytest.raises(ValueError, match=r'depth/2\.npy: expected a depth array of shape H x W x 1 = \(72, 96, 1\)'):
        NYUv2Dataset(str(root), split='val')
    lazy = NYUv2Dataset(str(root), split='val', check_files=False, pipeline=TEST_PIPELINE)
    with pytest.raises(ValueError, match=r'depth/2\.npy'):
        lazy[2]
    label = root / 'val' / 'label' / '1.npy'
    np.save(label, np.full((72, 96), 13.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r'label/1\.npy: labels must lie in \[-1, 13\)'):
        lazy[1]
    with pytest.raises(ValueError, match="protocol must be one of"):
        NYUv2Dataset(str(nyuv2_root), protocol='geo')
