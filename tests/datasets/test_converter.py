"""Info conversion: layout, agreement with the devkit (boxes, projections, ids), CAN bus, clear errors."""
import json
import os.path as osp

import mmengine
import numpy as np
import pytest
from pyquaternion import Quaternion

from projects.nexusflow.datasets.converter import (CAMERAS, CLASSES, GRAVITY, INFO_VERSION, can_bus_from_ego_poses,
                                                   create_nuscenes_infos)


@pytest.fixture(scope='module')
def nusc(synthetic_root):
    from nuscenes import NuScenes
    return NuScenes(version='v1.0-synth', dataroot=str(synthetic_root), verbose=False)


@pytest.fixture(scope='module')
def infos(synthetic_infos):
    return {split: mmengine.load(path) for split, path in synthetic_infos.items()}


def test_layout_order_and_splits(synthetic_root, synthetic_infos, infos):
    assert sorted(synthetic_infos) == ['train', 'val']
    assert osp.basename(synthetic_infos['val']) == 'nuscenes_infos_temporal_val.pkl'
    with open(osp.join(synthetic_root, 'v1.0-synth', 'splits.json')) as f:
        splits = json.load(f)
    for split, ann in infos.items():
        meta, frames = ann['metainfo'], ann['data_list']
        assert meta['info_version'] == INFO_VERSION and meta['version'] == 'v1.0-synth' and meta['split'] == split
        assert meta['classes'] == list(CLASSES) and meta['can_bus_source'] == 'canbus'
        assert meta['eval_set'] == f'synth_{split}'
        assert sorted({f['scene_name'] for f in frames}) == sorted(splits[f'synth_{split}'])
        assert [f['sample_idx'] for f in frames] == list(range(len(frames)))
        assert frames == sorted(frames, key=lambda f: (f['scene_name'], f['timestamp']))
        for prev, cur in zip(frames[:-1], frames[1:]):
            if cur['scene_token'] == prev['scene_token']:
                assert cur['prev'] == prev['token'] and prev['next'] == cur['token']
                assert cur['frame_idx'] == prev['frame_idx'] + 1
                assert cur['timestamp'] - prev['timestamp'] == pytest.approx(0.5, abs=0.05)
            else:
                assert cur['frame_idx'] == 0 and cur['prev'] == '' and prev['next'] == ''
        assert list(frames[0]['images']) == list(CAMERAS)
        assert all(osp.isfile(osp.join(synthetic_root, cam['img_path'])) for cam in frames[0]['images'].values())


def test_boxes_round_trip_to_global(nusc, infos):
    checked = 0
    for frame in infos['train']['data_list']:
        lidar2global = np.asarray(frame['ego2global']) @ np.asarray(frame['lidar2ego'])
        sample = nusc.get('sample', frame['token'])
        assert len(frame['instances']) == len(sample['anns'])
        for inst, ann_token in zip(frame['instances'], sample['anns']):
            ann = nusc.get('sample_annotation', ann_token)
            x, y, z, length, width, height, yaw = inst['bbox_3d']
            centre = lidar2global[:3, :3] @ np.array([x, y, z]) + lidar2global[:3, 3]
            np.testing.assert_allclose(centre, ann['translation'], atol=1e-6)
            np.testing.assert_allclose([width, length, height], ann['size'], atol=1e-9)
            heading = lidar2global[:3, :3] @ np.array([np.cos(yaw), np.sin(yaw), 0.0])
            ann_heading = Quaternion(ann['rotation']).rotate([1.0, 0.0, 0.0])
            np.testing.assert_allclose(heading[:2], ann_heading[:2], atol=1e-6)
            velocity = np.nan_to_num(nusc.box_velocity(ann_token), nan=0.0)
            np.testing.assert_allclose(lidar2global[:2, :2] @ np.asarray(inst['velocity']), velocity[:2], atol=1e-6)
            checked += 1
    assert checked > 20


def test_ids_labels_and_valid_flags(nusc, infos):
    from nuscenes.eval.detection.utils import category_to_detection_name
    ids_per_token = {}
    for frame in infos['train']['data_list'] + infos['val']['data_list']:
        for inst in frame['instances']:
            assert inst['instance_id'] == nusc.getind('instance', inst['instance_token'])
            assert ids_per_token.setdefault(inst['instance_token'], inst['instance_id']) == inst['instance_id']
            name = category_to_detection_name(inst['category_name'])
            assert inst['bbox_label_3d'] == (CLASSES.index(name) if name in CLASSES else -1)
            assert inst['bbox_3d_isvalid'] == (inst['num_lidar_pts'] + inst['num_radar_pts'] > 0)
    assert len(set(ids_per_token.values())) == len(ids_per_token) > 3


def test_lidar2img_matches_devkit_projection(nusc, infos):
    from nuscenes.utils.geometry_utils import view_points
    projected = 0
    for frame in infos['val']['data_list'][:4]:
        sample = nusc.get('sample', frame['token'])
        for cam in CAMERAS:
            info = frame['images'][cam]
            _, boxes, intrinsic = nusc.get_sample_data(sample['data'][cam])  # boxes in the camera frame
            by_token = {box.token: box for box in boxes}
            for inst, ann_token in zip(frame['instances'], sample['anns']):
                box = by_token.get(ann_token)
                if box is None or box.center[2] < 1.0:
                    continue
                expected = view_points(box.center[:, None], np.asarray(intrinsic), normalize=True)[:2, 0]
                point = np.asarray(info['lidar2img']) @ np.array(inst['bbox_3d'][:3] + [1.0])
                np.testing.assert_allclose(point[:2] / point[2], expected, atol=1e-4)
                np.testing.assert_allclose(np.asarray(info['lidar2cam']) @ np.linalg.inv(info['lidar2cam']),
                                           np.eye(4), atol=1e-9)
                np.testing.assert_allclose(np.asarray(info['cam2lidar']), np.linalg.inv(info['lidar2cam']),
                                           atol=1e-9)
                projected += 1
    assert projected > 5


def test_can_bus_sources_agree(synthetic_root, infos, tmp_path):
    derived = create_nuscenes_infos(str(synthetic_root), 'v1.0-synth', str(tmp_path))
    ego = mmengine.load(derived['train'])
    assert ego['metainfo']['can_bus_source'] == 'ego_pose'
    can_bus = np.array([f['can_bus'] for f in infos['train']['data_list']])
    from_poses = np.array([f['can_bus'] for f in ego['data_list']])
    np.testing.assert_allclose(can_bus[:, :7], from_poses[:, :7], atol=1e-9)  # ego position + quaternion
    np.testing.assert_allclose(can_bus[:, 16:], from_poses[:, 16:], atol=1e-9)  # yaw rad / deg
    np.testing.assert_allclose(can_bus[:, 13:16], from_poses[:, 13:16], atol=0.15)  # velocity, ego frame, m/s
    np.testing.assert_allclose(can_bus[:, 7:10], from_poses[:, 7:10], atol=0.4)  # specific force, m/s^2
    np.testing.assert_allclose(can_bus[:, 10:13], from_poses[:, 10:13], atol=0.05)  # rotation rate, rad/s
    speeds = np.linalg.norm(can_bus[:, 13:15], axis=1)
    assert speeds.min() > 1.0  # the ego drives, so the comparison is not trivially 0 == 0
    for frame in infos['train']['data_list']:
        yaw = Quaternion(matrix=np.asarray(frame['ego2global'])[:3, :3]).yaw_pitch_roll[0] % (2 * np.pi)
        assert frame['can_bus'][16] == pytest.approx(yaw) and frame['can_bus'][17] == pytest.approx(np.degrees(yaw))


def test_can_bus_from_ego_poses_exact_motion():
    # constant acceleration a = 0.8 m/s^2 along a line heading 30 deg, yaw rate 0.2 rad/s
    times = np.arange(6) * 0.5
    heading = np.radians(30.0) + 0.2 * times
    distance = 3.0 * times + 0.4 * times ** 2
    positions = np.stack([distance * np.cos(np.radians(30.0)), distance * np.sin(np.radians(30.0)),
                          np.zeros_like(times)], axis=1)
    rotations = [Quaternion(axis=[0, 0, 1], angle=h).elements for h in heading]
    can_bus = can_bus_from_ego_poses(times, positions, rotations)
    assert can_bus.shape == (6, 18)
    for k in range(1, 5):  # central differences are exact for quadratic motion
        local = np.radians(30.0) - heading[k]  # direction of travel in the ego frame
        speed = 3.0 + 0.8 * times[k]
        np.testing.assert_allclose(can_bus[k, 13:16], [speed * np.cos(local), speed * np.sin(local), 0], atol=1e-9)
        np.testing.assert_allclose(can_bus[k, 10:13], [0, 0, 0.2], atol=1e-9)
    np.testing.assert_allclose(can_bus[2:4, 7], 0.8 * np.cos(np.radians(30.0) - heading[2:4]), atol=1e-9)
    np.testing.assert_allclose(can_bus[:, 9], GRAVITY, atol=1e-9)  # specific force, as the CAN bus IMU
    np.testing.assert_allclose(can_bus[:, 16], heading % (2 * np.pi), atol=1e-12)
    np.testing.assert_allclose(can_bus[:, :3], positions, atol=1e-12)
    single = can_bus_from_ego_poses(np.zeros(1), positions[:1], rotations[:1])[0]
    np.testing.assert_array_equal(single[7:16], [0, 0, GRAVITY] + [0] * 6)


def test_clear_errors(tmp_path, synthetic_root):
    with pytest.raises(FileNotFoundError, match='v1.0-synth'):
        create_nuscenes_infos(str(tmp_path / 'missing'), 'v1.0-synth', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='can_bus'):
        create_nuscenes_infos(str(synthetic_root), 'v1.0-synth', str(tmp_path), canbus_root=str(tmp_path))
