"""Frame geometry shared by the whole plugin (``core/frames.py``) and its two stateful users."""
import math

import numpy as np
import pytest
import torch

from projects.nexusflow.models.uniad.temporal_state import TemporalState
from projects.nexusflow.models.uniad.track import TrackState
from projects.nexusflow.core.frames import (lidar2global_of, pose_of, relative_pose, stack_relative_poses,
                                            timestamp_of)

LIDAR2EGO = np.array([[0.0, 1.0, 0.0, 0.9], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.8], [0.0, 0.0, 0.0, 1.0]])


def ego_pose(x, y, yaw):
    mat = np.eye(4)
    mat[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    mat[:2, 3] = [x, y]
    return mat


def meta(x, y, yaw, timestamp=0.0):
    return dict(ego2global=ego_pose(x, y, yaw).tolist(), lidar2ego=LIDAR2EGO, timestamp=timestamp)


def test_lidar2global_maps_the_lidar_origin_and_axes():
    """LiDAR origin = ego (0.9, 0, 1.8); the ego at (1000, 2000) heading +90 deg puts it at (1000, 2000.9, 1.8) and
    the LiDAR x axis (ego -y) along global +x."""
    pose = lidar2global_of(meta(1000.0, 2000.0, math.pi / 2))
    assert pose.dtype == np.float64
    np.testing.assert_allclose(pose[:3, 3], [1000.0, 2000.9, 1.8], atol=1e-9)
    np.testing.assert_allclose(pose[:3, 0], [1.0, 0.0, 0.0], atol=1e-12)


def test_relative_pose_moves_points_between_frames_in_numpy_and_torch():
    """The ego drives 2 m forward and turns 90 deg left. A point 5 m ahead of the previous LiDAR (global
    (505.9, 300)) is then 3.9 m to the right of the ego and 0.9 m behind the LiDAR: (3.9, -0.9, 0) in LiDAR axes."""
    prev, cur = lidar2global_of(meta(500.0, 300.0, 0.0)), lidar2global_of(meta(502.0, 300.0, math.pi / 2))
    prev2cur = relative_pose(prev, cur)
    point = np.array([0.0, 5.0, 0.0, 1.0])
    expected = np.linalg.inv(cur) @ (prev @ point)
    np.testing.assert_allclose(prev2cur @ point, expected, atol=1e-9)
    np.testing.assert_allclose((prev2cur @ point)[:3], [3.9, -0.9, 0.0], atol=1e-9)
    as_tensor = relative_pose(torch.as_tensor(prev), torch.as_tensor(cur))
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float64
    np.testing.assert_allclose(as_tensor.numpy(), prev2cur, atol=1e-12)
    np.testing.assert_allclose(relative_pose(cur, cur), np.eye(4), atol=1e-12)
    with pytest.raises(TypeError, match='both poses must be numpy arrays or both tensors'):
        relative_pose(prev, torch.as_tensor(cur))


def test_stacked_poses_zero_without_history_and_the_two_states_agree():
    metas = [meta(10.0, 0.0, 0.0), meta(12.0, 1.0, 0.3)]
    poses = [lidar2global_of(m) for m in metas]
    stacked = stack_relative_poses([None, poses[0]], [poses[0], poses[1]])
    assert stacked.dtype == torch.float32 and stacked.shape == (2, 4, 4)
    assert stacked[0].abs().max() == 0  # the BEV encoder's "no history" marker
    torch.testing.assert_close(stacked[1], torch.from_numpy(relative_pose(poses[0], poses[1])).float())

    temporal = TemporalState(scene_tokens=['a', 'b'], lidar2global=[poses[0], poses[0]])
    torch.testing.assert_close(temporal.prev2cur([metas[1], metas[1]], new_scene=[True, False]), stacked[[0, 1]])
    track = TrackState.empty(1)
    track.advance(0, None, poses[0], 0.0, 'a')
    assert track.lidar2global[0].dtype == torch.float64
    torch.testing.assert_close(track.prev2cur(0, poses[1]).float(), stacked[1])


def test_metainfo_errors_name_the_key():
    assert timestamp_of(meta(0.0, 0.0, 0.0, timestamp=12.5)) == 12.5
    with pytest.raises(KeyError, match="lacks 'lidar2ego'"):
        lidar2global_of(dict(ego2global=np.eye(4)))
    with pytest.raises(ValueError, match=r"metainfo\['ego2global'\] must be 4x4, got shape \(3, 3\)"):
        pose_of(dict(ego2global=np.eye(3)), 'ego2global')
    with pytest.raises(KeyError, match='timestamp'):
        timestamp_of({})
