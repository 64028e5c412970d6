"""NuScenesTrackMapDataset + transforms + clip_collate on the synthetic set."""
import os
import shutil

import mmengine
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from projects.nexusflow.datasets import CLASSES, NuScenesTrackMapDataset, clip_collate

RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
IMG_SCALE = (200, 112)


def pipeline(canvas=(50, 50)):
    return [dict(type='NexusFlowLoadMultiViewImages'), dict(type='NexusFlowResizeMultiViewImages', scale=IMG_SCALE),
            dict(type='NexusFlowLoadTrackAnnotations3D'),
            dict(type='NexusFlowTrackObjectRangeFilter', point_cloud_range=RANGE),
            dict(type='NexusFlowLoadMapAnnotations', pc_range=RANGE, canvas_size=canvas, line_thickness=1),
            dict(type='NexusFlowPackTrackMapInputs')]


def build(synthetic_root, synthetic_infos, split='train', **kwargs):
    kwargs.setdefault('pipeline', pipeline())
    return NuScenesTrackMapDataset(data_root=str(synthetic_root), ann_file=synthetic_infos[split], **kwargs)


@pytest.fixture(scope='module')
def train_set(synthetic_root, synthetic_infos):
    return build(synthetic_root, synthetic_infos, queue_length=3, version='v1.0-synth')


def test_clips_are_consecutive_frames_of_one_scene(train_set, synthetic_root, synthetic_infos):
    frames = mmengine.load(synthetic_infos['train'])['data_list']
    per_scene = np.unique([f['scene_token'] for f in frames], return_counts=True)[1]
    assert len(train_set) == sum(n - 2 for n in per_scene) > 0
    assert train_set.num_frames == len(frames)
    for idx in range(len(train_set)):
        clip = [train_set.get_frame_info(i) for i in train_set.clip_frame_indices(idx)]
        assert len({f['scene_token'] for f in clip}) == 1
        assert [f['frame_idx'] for f in clip] == list(range(clip[0]['frame_idx'], clip[0]['frame_idx'] + 3))
        assert all(b['prev'] == a['token'] for a, b in zip(clip[:-1], clip[1:]))
        assert train_set.get_data_info(idx)['token'] == clip[-1]['token']
    every_other = build(synthetic_root, synthetic_infos, queue_length=3, load_interval=2)
    assert [every_other.get_data_info(i)['token'] for i in range(len(every_other))] == \
        [train_set.get_data_info(i)['token'] for i in range(0, len(train_set), 2)]


def test_item_layout_and_geometry(train_set):
    item = train_set[0]
    img, samples = item['inputs']['img'], item['data_samples']
    assert img.dtype == torch.uint8 and img.shape == (3, 6, 3, IMG_SCALE[1], IMG_SCALE[0])
    assert len(samples) == 3
    for frame_idx, sample in zip(train_set.clip_frame_indices(0), samples):
        info = train_set.get_frame_info(frame_idx)
        assert sample.token == info['token'] and sample.img_shape == (IMG_SCALE[1], IMG_SCALE[0])
        assert sample.has_track_gt and sample.has_map_gt and sample.can_bus.shape == (18,)
        width, height = 400, 225  # fixture image size
        cam2img = np.array([info['images'][cam]['cam2img'] for cam in info['images']])
        scale = np.diag([IMG_SCALE[0] / width, IMG_SCALE[1] / height, 1.0])
        np.testing.assert_allclose(sample.cam2img, scale @ cam2img, atol=1e-9)
        # a box centre projects onto the same relative position in the resized image
        original = np.array([info['images'][cam]['lidar2img'] for cam in info['images']])
        point = np.array([5.0, 20.0, 0.5, 1.0])
        ours, full = sample.lidar2img @ point, original @ point
        np.testing.assert_allclose(ours[:, 0] / ours[:, 2], full[:, 0] / full[:, 2] * IMG_SCALE[0] / width)
        np.testing.assert_allclose(ours[:, 1] / ours[:, 2], full[:, 1] / full[:, 2] * IMG_SCALE[1] / height)
        map_gt = sample.gt_map_instances
        assert map_gt.masks.shape[1:] == (50, 50) and map_gt.labels[-1] == 3 and (map_gt.labels[:-1] < 3).all()


def test_track_gt_matches_infos(train_set):
    for idx in range(min(3, len(train_set))):
        sample = train_set[idx]['data_samples'][-1]
        info = train_set.get_data_info(idx)
        expected = [inst for inst in info['instances'] if inst['bbox_label_3d'] >= 0 and inst['bbox_3d_isvalid']
                    and RANGE[0] < inst['bbox_3d'][0] < RANGE[3] and RANGE[1] < inst['bbox_3d'][1] < RANGE[4]]
        gt = sample.gt_instances_3d
        assert len(gt) == len(expected) > 0
        assert gt.instance_ids.tolist() == [inst['instance_id'] for inst in expected]
        assert gt.labels_3d.tolist() == [inst['bbox_label_3d'] for inst in expected]
        boxes = gt.bboxes_3d.tensor.numpy()
        assert boxes.shape[1] == 9
        for box, inst in zip(boxes, expected):
            x, y, z, length, width, height, yaw = inst['bbox_3d']
            np.testing.assert_allclose(box, [x, y, z - height / 2, length, width, height, yaw, *inst['velocity']],
                                       rtol=1e-6, atol=1e-5)


def test_test_mode_single_frames_in_scene_order(synthetic_root, synthetic_infos):
    dataset = build(synthetic_root, synthetic_infos, split='val', test_mode=True, queue_length=5)
    frames = mmengine.load(synthetic_infos['val'])['data_list']
    assert len(dataset) == len(frames)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [(f['scene_name'], f['timestamp']) for f in infos] == sorted((f['scene_name'], f['timestamp'])
                                                                        for f in frames)
    item = dataset[len(dataset) - 1]
    assert item['inputs']['img'].shape[0] == 1 and item['data_samples'][0].token == infos[-1]['token']


def test_same_item_twice_is_identical(train_set):
    first, second = train_set[1], train_set[1]
    assert torch.equal(first['inputs']['img'], second['inputs']['img'])
    for a, b in zip(first['data_samples'], second['data_samples']):
        assert torch.equal(a.gt_instances_3d.bboxes_3d.tensor, b.gt_instances_3d.bboxes_3d.tensor)
        assert torch.equal(a.gt_map_instances.masks, b.gt_map_instances.masks)
        np.testing.assert_array_equal(a.lidar2img, b.lidar2img)


def test_class_subset_remaps_labels(synthetic_root, synthetic_infos):
    dataset = build(synthetic_root, synthetic_infos, metainfo=dict(classes=['pedestrian', 'car']),
                    pipeline=[dict(type='NexusFlowLoadTrackAnnotations3D', filter_invalid=False)])
    info = dataset.get_frame_info(0)
    names = {inst['category_name']: inst['bbox_label_3d'] for inst in info['instances']}
    assert names.get('vehicle.car', 1) == 1 and names.get('human.pedestrian.adult', 0) == 0
    assert all(label == -1 for name, label in names.items() if name not in ('vehicle.car', 'human.pedestrian.adult'))
    assert dataset.metainfo['classes'] == ['pedestrian', 'car'] and list(CLASSES)[0] == 'car'


def test_clip_collate_keeps_sample_major_layout(train_set):
    items = [train_set[0], train_set[1]]
    batch = clip_collate(items)
    assert len(batch['inputs']['img']) == 2 and batch['inputs']['img'][1].shape[0] == 3
    assert [len(clip) for clip in batch['data_samples']] == [3, 3]
    assert batch['data_samples'][1][2].token == items[1]['data_samples'][2].token
    transposed = pseudo_collate(items)['data_samples']
    assert transposed[1][0].token == items[0]['data_samples'][1].token  # what clip_collate avoids
    from mmengine.registry import FUNCTIONS
    assert FUNCTIONS.get('nexusflow_clip_collate') is clip_collate
    with pytest.raises(ValueError, match='empty batch'):
        clip_collate([])


def test_clear_errors(synthetic_root, synthetic_infos, tmp_path):
    with pytest.raises(FileNotFoundError, match='data_root'):
        build(tmp_path / 'nowhere', synthetic_infos)
    with pytest.raises(FileNotFoundError, match='create_data.py'):
        NuScenesTrackMapDataset(data_root=str(synthetic_root), ann_file='missing.pkl')
    with pytest.raises(ValueError, match="'v1.0-trainval'"):
        build(synthetic_root, synthetic_infos, version='v1.0-trainval')
    foreign = tmp_path / 'mmdet3d_infos.pkl'
    mmengine.dump(dict(metainfo=dict(version='v1.0-synth', info_version='1.1'), data_list=[]), str(foreign))
    with pytest.raises(ValueError, match='another tool'):
        NuScenesTrackMapDataset(data_root=str(synthetic_root), ann_file=str(foreign))
    empty = tmp_path / 'empty.pkl'
    mmengine.dump(dict(metainfo=dict(mmengine.load(synthetic_infos['val'])['metainfo']), data_list=[]), str(empty))
    with pytest.raises(ValueError, match='no samples'):
        NuScenesTrackMapDataset(data_root=str(synthetic_root), ann_file=str(empty))
    # a data root without maps/expansion: refused at init, naming the location
    bare = tmp_path / 'bare'
    bare.mkdir()
    with pytest.raises(FileNotFoundError, match='map expansion'):
        NuScenesTrackMapDataset(data_root=str(bare), ann_file=synthetic_infos['train'])
    # a missing camera image: refused when the item is loaded, with the path and the command to run
    root = tmp_path / 'copy'
    shutil.copytree(synthetic_root, root)
    dataset = build(root, synthetic_infos, queue_length=1)
    missing = dataset.get_frame_info(0)['images']['CAM_BACK']['img_path']
    os.remove(missing)
    with pytest.raises(FileNotFoundError, match='create_data.py') as err:
        dataset[0]
    assert missing in str(err.value)
