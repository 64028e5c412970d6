"""nuScenes → temporal info pkls (``nuscenes_infos_temporal_{train,val}.pkl``) for :class:`NuScenesTrackMapDataset`.

Follows UniAD's ``uniad_nuscenes_converter.py`` / BEVFormer's ``_get_can_bus_info`` for the content (scene, prev/next,
instance ids, 18-d CAN bus) and mmdet3d 1.x ``update_infos_to_v2.py`` for the layout (``metainfo`` + ``data_list``,
4x4 matrices, ``[x, y, z, l, w, h, yaw]`` boxes). The layout is specified in ``projects/nexusflow/README.md``.

Changes against BEVFormer's CAN-bus reader: the message used is consistently the last ``pose`` message at or before
the sample (BEVFormer mixes it with the first message after the sample for accel / rotation rate / velocity), and
scenes without CAN data fall back to the ego-pose derivation instead of zeros.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import mmengine
import numpy as np
from mmengine.logging import MMLogger
from nuscenes.eval.detection.utils import category_to_detection_name
from nuscenes.utils.splits import get_scenes_of_split
from pyquaternion import Quaternion

INFO_VERSION = 'nexusflow-1.0'
CLASSES = ('car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle', 'bicycle',
           'pedestrian', 'traffic_cone')
CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
# devkit split names per version; any other version reads '<version>/splits.json' (custom names, because the
# devkit refuses custom splits that reuse a predefined name such as 'train').
OFFICIAL_SPLITS = {
    'v1.0-trainval': {'train': 'train', 'val': 'val'},
    'v1.0-mini': {'train': 'mini_train', 'val': 'mini_val'},
    'v1.0-test': {'test': 'test'},
}
CUSTOM_SPLITS = {'train': 'synth_train', 'val': 'synth_val'}
GRAVITY = 9.80665  # m/s^2, included in CAN-bus accelerations (IMU specific force)


def devkit_split_names(version: str) -> Dict[str, str]:
    """Map our split names ('train', 'val' or 'test') to the devkit split (``eval_set``) names of ``version``."""
    return dict(OFFICIAL_SPLITS.get(version, CUSTOM_SPLITS))


def create_nuscenes_infos(root_path: str, version: str, out_dir: str, canbus_root: Optional[str] = None,
                          info_prefix: str = 'nuscenes') -> Dict[str, str]:
    """Write ``<out_dir>/<info_prefix>_infos_temporal_<split>.pkl`` for every split of ``version``.

    Args:
        root_path (str): nuScenes data root (holds ``<version>/``, ``samples/``, ``maps/``).
        version (str): e.g. ``'v1.0-trainval'``, ``'v1.0-mini'``, ``'v1.0-test'`` or a custom version such as
            ``'v1.0-synth'`` whose ``<version>/splits.json`` lists ``'synth_train'`` / ``'synth_val'`` scene names.
        out_dir (str): folder to write the pkls to (created if missing).
        canbus_root (str, optional): folder holding the CAN bus expansion ``can_bus/``. Without it the CAN-bus
            vector is derived from the ego poses (finite differences) and a warning is logged.
        info_prefix (str): file name prefix.

    Returns:
        dict[str, str]: split name (``'train'``, ``'val'``; ``'test'`` for v1.0-test) -> written pkl path.

    Box convention of the written ``instances``: ``bbox_3d = [x, y, z, l, w, h, yaw]`` in the LiDAR frame
    (x right, y forward, z up; metres) with ``(x, y, z)`` the **gravity** centre, ``(l, w, h)`` = nuScenes
    ``size[[1, 0, 2]]`` and ``yaw`` = ``yaw_pitch_roll[0]`` of the box rotation in the LiDAR frame (radians,
    counter-clockwise from +x). ``velocity = [vx, vy]`` m/s in the LiDAR frame (NaN from the devkit -> 0).
    """
    from nuscenes import NuScenes

    if not osp.isdir(osp.join(root_path, version)):
        raise FileNotFoundError(f'nuScenes tables not found: expected the folder {osp.join(root_path, version)} '
                                f'(data root {root_path!r}, version {version!r}); check --root-path and --version')
    logger = MMLogger.get_current_instance()
    nusc = NuScenes(version=version, dataroot=root_path, verbose=False)
    can_reader = _CanBusReader(canbus_root) if canbus_root is not None else None
    if can_reader is None:
        logger.warning('no CAN bus root given: can_bus is derived from ego poses (finite differences)')
    os.makedirs(out_dir, exist_ok=True)
    split_scenes = _split_scene_names(nusc, version)
    _warn_unused_scenes(nusc, split_scenes, logger)
    paths = {}
    for split, scene_names in split_scenes.items():
        data_list, sources = _convert_split(nusc, scene_names, can_reader, with_instances=(split != 'test'))
        metainfo = dict(dataset='nuscenes', version=version, info_version=INFO_VERSION, split=split,
                        eval_set=devkit_split_names(version)[split], classes=list(CLASSES),
                        can_bus_source=_summarise_sources(sources))
        path = osp.join(out_dir, f'{info_prefix}_infos_temporal_{split}.pkl')
        mmengine.dump(dict(metainfo=metainfo, data_list=data_list), path)
        logger.info(f'{split}: {len(data_list)} samples of {len(scene_names)} scenes -> {path}')
        paths[split] = path
    return paths


def _split_scene_names(nusc, version: str) -> Dict[str, List[str]]:
    """Scene names per split, from the devkit's official lists or ``<version>/splits.json``."""
    names = devkit_split_names(version)
    available = {scene['name'] for scene in nusc.scene}
    split_scenes = {}
    for split, devkit_name in names.items():
        try:
            listed = get_scenes_of_split(devkit_name, nusc)
        except ValueError as err:
            raise KeyError(f'split {devkit_name!r} for version {version!r} not found ({err}); a custom version needs '
                           f'{osp.join(nusc.dataroot, version, "splits.json")} with the keys '
                           f'{sorted(CUSTOM_SPLITS.values())}') from err
        split_scenes[split] = sorted(name for name in listed if name in available)
    return split_scenes


def _warn_unused_scenes(nusc, split_scenes: Dict[str, List[str]], logger) -> None:
    used = {name for names in split_scenes.values() for name in names}
    unused = sorted(scene['name'] for scene in nusc.scene if scene['name'] not in used)
    if unused:
        logger.warning(f'{len(unused)} scenes are in no split and are skipped: {unused[:5]}...')


def _summarise_sources(sources: Sequence[str]) -> str:
    kinds = sorted(set(sources))
    return kinds[0] if len(kinds) == 1 else 'mixed'


def _convert_split(nusc, scene_names: Sequence[str], can_reader, with_instances: bool):
    """Convert the samples of ``scene_names`` (sorted by scene name, then timestamp)."""
    scene_by_name = {scene['name']: scene for scene in nusc.scene}
    data_list, sources = [], []
    for scene_name in mmengine.track_iter_progress(list(scene_names)):
        scene = scene_by_name[scene_name]
        samples = _scene_samples(nusc, scene)
        can_bus, source = _scene_can_bus(nusc, scene_name, samples, can_reader)
        sources.append(source)
        for frame_idx, (sample, can) in enumerate(zip(samples, can_bus)):
            info = _sample_info(nusc, sample, scene, frame_idx, with_instances)
            info['can_bus'] = [float(v) for v in can]
            data_list.append(info)
    for idx, info in enumerate(data_list):
        info['sample_idx'] = idx
    return data_list, sources


def _scene_samples(nusc, scene: dict) -> List[dict]:
    """The samples of a scene in time order (walks the ``next`` chain and checks it against the scene record)."""
    samples, token = [], scene['first_sample_token']
    while token:
        sample = nusc.get('sample', token)
        samples.append(sample)
        token = sample['next']
    if samples[-1]['token'] != scene['last_sample_token']:
        raise ValueError(f'broken sample chain in {scene["name"]}: the next-chain ends at {samples[-1]["token"]}, '
                         f'the scene record says {scene["last_sample_token"]}')
    return samples


def _scene_can_bus(nusc, scene_name: str, samples: List[dict], can_reader):
    """18-d CAN-bus vectors of a scene's samples and their source ('canbus' or 'ego_pose')."""
    poses = [_lidar_ego_pose(nusc, sample) for sample in samples]
    messages = can_reader.pose_messages(scene_name) if can_reader is not None else None
    if messages is None:
        timestamps = np.array([sample['timestamp'] for sample in samples], dtype=np.float64) / 1e6
        return can_bus_from_ego_poses(timestamps, [p['translation'] for p in poses],
                                      [p['rotation'] for p in poses]), 'ego_pose'
    can_bus = []
    for sample, pose in zip(samples, poses):
        message = _CanBusReader.last_message_before(messages, sample['timestamp'])
        can_bus.append(can_bus_from_message(message, pose['translation'], pose['rotation']))
    return np.stack(can_bus), 'canbus'


def _lidar_ego_pose(nusc, sample: dict) -> dict:
    return nusc.get('ego_pose', nusc.get('sample_data', sample['data']['LIDAR_TOP'])['ego_pose_token'])


def _sample_info(nusc, sample: dict, scene: dict, frame_idx: int, with_instances: bool) -> dict:
    """The info dict of one sample (layout in ``projects/nexusflow/README.md``, "Info files")."""
    missing = [channel for channel in ('LIDAR_TOP',) + CAMERAS if channel not in sample['data']]
    if missing:
        raise KeyError(f'sample {sample["token"]} of {scene["name"]} has no keyframe data for {missing}; '
                       f'every sample needs LIDAR_TOP and the six cameras {list(CAMERAS)}')
    lidar_sd = nusc.get('sample_data', sample['data']['LIDAR_TOP'])
    calib = nusc.get('calibrated_sensor', lidar_sd['calibrated_sensor_token'])
    ego = nusc.get('ego_pose', lidar_sd['ego_pose_token'])
    lidar2ego, ego2global = pose_matrix(**_pose_args(calib)), pose_matrix(**_pose_args(ego))
    lidar2global = ego2global @ lidar2ego
    lidar_rotation = Quaternion(ego['rotation']) * Quaternion(calib['rotation'])
    global2lidar = np.linalg.inv(lidar2global)
    anns = sample['anns'] if with_instances else []
    instances = [_instance_info(nusc, token, global2lidar, lidar_rotation) for token in anns]
    return dict(
        token=sample['token'], scene_token=scene['token'], scene_name=scene['name'],
        location=nusc.get('log', scene['log_token'])['location'], timestamp=sample['timestamp'] / 1e6,
        prev=sample['prev'], next=sample['next'], frame_idx=frame_idx,
        ego2global=ego2global.tolist(), lidar2ego=lidar2ego.tolist(),
        lidar_points=dict(lidar_path=lidar_sd['filename'], lidar2ego=lidar2ego.tolist(), num_pts_feats=5),
        images={cam: _camera_info(nusc, sample['data'][cam], lidar2global) for cam in CAMERAS},
        instances=instances)


def _pose_args(record: dict) -> dict:
    return dict(translation=record['translation'], rotation=record['rotation'])


def pose_matrix(translation: Sequence[float], rotation: Sequence[float]) -> np.ndarray:
    """4x4 float64 rigid transform from a nuScenes ``translation`` (m) and ``rotation`` (quaternion w, x, y, z)."""
    matrix = np.eye(4)
    matrix[:3, :3] = Quaternion(rotation).rotation_matrix
    matrix[:3, 3] = translation
    return matrix


def _calibration_matrix(nusc, sample_data: dict) -> np.ndarray:
    """Sensor -> ego 4x4 matrix of a sample_data record."""
    return pose_matrix(**_pose_args(nusc.get('calibrated_sensor', sample_data['calibrated_sensor_token'])))


def _camera_info(nusc, sd_token: str, lidar2global: np.ndarray) -> dict:
    """One camera: intrinsics and the LiDAR <-> camera transforms through the global frame.

    The camera has its own ego pose (its timestamp differs from the LiDAR's), so
    ``cam2lidar = inv(lidar2global) @ ego2global_cam @ cam2ego`` as in mmdet3d's ``obtain_sensor2top``.
    """
    sd = nusc.get('sample_data', sd_token)
    cam2ego = _calibration_matrix(nusc, sd)
    cam_ego2global = pose_matrix(**_pose_args(nusc.get('ego_pose', sd['ego_pose_token'])))
    cam2lidar = np.linalg.inv(lidar2global) @ cam_ego2global @ cam2ego
    lidar2cam = np.linalg.inv(cam2lidar)
    cam2img = np.array(nusc.get('calibrated_sensor', sd['calibrated_sensor_token'])['camera_intrinsic'],
                       dtype=np.float64)
    if cam2img.shape != (3, 3):
        raise ValueError(f'camera {sd["channel"]} of sample_data {sd_token} has intrinsics of shape '
                         f'{cam2img.shape}, expected (3, 3)')
    viewpad = np.eye(4)
    viewpad[:3, :3] = cam2img
    return dict(img_path=sd['filename'], cam2img=cam2img.tolist(), cam2ego=cam2ego.tolist(),
                lidar2cam=lidar2cam.tolist(), cam2lidar=cam2lidar.tolist(), lidar2img=(viewpad @ lidar2cam).tolist(),
                sample_data_token=sd_token, timestamp=sd['timestamp'] / 1e6)


def _instance_info(nusc, ann_token: str, global2lidar: np.ndarray, lidar_rotation: Quaternion) -> dict:
    """One annotation as a LiDAR-frame gravity-centre box ``[x, y, z, l, w, h, yaw]`` with its track id.

    ``global2lidar`` is the 4x4 global -> LiDAR transform, ``lidar_rotation`` the LiDAR -> global rotation.
    """
    ann = nusc.get('sample_annotation', ann_token)
    center = global2lidar[:3, :3] @ np.asarray(ann['translation'], dtype=np.float64) + global2lidar[:3, 3]
    rotation = lidar_rotation.inverse * Quaternion(ann['rotation'])
    width, length, height = ann['size']
    velocity = nusc.box_velocity(ann_token)
    velocity = np.nan_to_num(global2lidar[:3, :3] @ velocity, nan=0.0)
    detection_name = category_to_detection_name(ann['category_name'])
    num_lidar, num_radar = int(ann['num_lidar_pts']), int(ann['num_radar_pts'])
    return dict(bbox_3d=[*map(float, center), float(length), float(width), float(height),
                         float(rotation.yaw_pitch_roll[0])],
                velocity=[float(velocity[0]), float(velocity[1])],
                bbox_label_3d=CLASSES.index(detection_name) if detection_name in CLASSES else -1,
                category_name=ann['category_name'], instance_token=ann['instance_token'],
                instance_id=int(nusc.getind('instance', ann['instance_token'])),
                num_lidar_pts=num_lidar, num_radar_pts=num_radar, bbox_3d_isvalid=(num_lidar + num_radar) > 0)


def can_bus_from_message(message: dict, translation: Sequence[float], rotation: Sequence[float]) -> np.ndarray:
    """18-d CAN-bus vector (BEVFormer layout) from one CAN ``pose`` message and the sample's ego pose.

    Args:
        message (dict): CAN ``pose`` message with ``accel`` [3] (m/s^2, specific force: about +9.81 on z at
            rest), ``rotation_rate`` [3] (rad/s) and ``vel`` [3] (m/s), all in the ego frame (x forward, y left,
            z up).
        translation (Sequence[float]): ego position in the global frame, metres [3].
        rotation (Sequence[float]): ego -> global rotation quaternion (w, x, y, z).

    Returns:
        np.ndarray: float64 [18] = position (3, global m), quaternion (4), accel (3), rotation rate (3),
        velocity (3), ego yaw in rad in [0, 2 pi), ego yaw in degrees in [0, 360). Position and quaternion come
        from the sample's ego pose (as BEVFormer's dataset overwrites them), the rest from the message.
    """
    can_bus = np.zeros(18)
    can_bus[0:3] = translation
    can_bus[3:7] = rotation
    can_bus[7:10] = message['accel']
    can_bus[10:13] = message['rotation_rate']
    can_bus[13:16] = message['vel']
    can_bus[16:18] = _yaw_rad_deg(rotation)
    return can_bus


def can_bus_from_ego_poses(timestamps: np.ndarray, translations: Sequence[Sequence[float]],
                           rotations: Sequence[Sequence[float]]) -> np.ndarray:
    """18-d CAN-bus vectors of one scene derived from its ego poses by finite differences.

    Velocity and acceleration are central differences of the global position (one-sided at the scene ends,
    ``np.gradient``), rotated into the ego frame; the acceleration follows the CAN ``pose`` (IMU) convention of the
    specific force, i.e. it includes ``+GRAVITY`` along the global z axis. The rotation rate is the rotation vector
    of ``R[k-1]^T R[k+1]`` divided by the time between them (ego frame). A one-sample scene gets zero motion.

    Args:
        timestamps (np.ndarray): float64 [T] seconds, strictly increasing.
        translations (Sequence): [T] ego positions (global frame, metres) [3].
        rotations (Sequence): [T] ego -> global quaternions (w, x, y, z).

    Returns:
        np.ndarray: float64 [T, 18] in the layout of :func:`can_bus_from_message`.
    """
    num = len(timestamps)
    positions = np.asarray(translations, dtype=np.float64).reshape(num, 3)
    quats = [Quaternion(r) for r in rotations]
    vel_global = np.gradient(positions, timestamps, axis=0) if num > 1 else np.zeros_like(positions)
    acc_global = np.gradient(vel_global, timestamps, axis=0) if num > 1 else np.zeros_like(positions)
    acc_global[:, 2] += GRAVITY
    can_bus = np.zeros((num, 18))
    for k, quat in enumerate(quats):
        to_ego = quat.rotation_matrix.T
        before, after = max(k - 1, 0), min(k + 1, num - 1)
        can_bus[k] = can_bus_from_message(
            dict(accel=to_ego @ acc_global[k], vel=to_ego @ vel_global[k],
                 rotation_rate=_rotation_rate(quats[before], quats[after],
                                              timestamps[after] - timestamps[before])),
            positions[k], quat.elements)
    return can_bus


def _rotation_rate(start: Quaternion, end: Quaternion, duration: float) -> np.ndarray:
    """Angular velocity (rad/s, body frame of ``start``) that turns ``start`` into ``end`` in ``duration`` s."""
    if duration <= 0:
        return np.zeros(3)
    relative = (start.inverse * end).normalised
    return relative.axis * relative.angle / duration


def _yaw_rad_deg(rotation: Sequence[float]) -> np.ndarray:
    """Yaw of the ego x axis in the global frame: ``[rad in [0, 2 pi), deg in [0, 360)]``."""
    yaw = float(Quaternion(rotation).yaw_pitch_roll[0]) % (2 * np.pi)
    return np.array([yaw, np.degrees(yaw)])


class _CanBusReader:
    """Reads ``can_bus/<scene>_pose.json`` through the devkit, one scene at a time."""

    def __init__(self, canbus_root: str):
        if not osp.isdir(osp.join(canbus_root, 'can_bus')):
            raise FileNotFoundError(f'CAN bus expansion not found: expected the folder '
                                    f'{osp.join(canbus_root, "can_bus")}; pass the folder that holds can_bus/ '
                                    f'(or no --canbus to derive can_bus from ego poses)')
        from nuscenes.can_bus.can_bus_api import NuScenesCanBus
        self.api = NuScenesCanBus(dataroot=canbus_root)
        self.logger = MMLogger.get_current_instance()

    def pose_messages(self, scene_name: str) -> Optional[List[dict]]:
        """The scene's ``pose`` messages sorted by ``utime``, or None (logged) if the scene has no CAN data."""
        try:
            messages = self.api.get_messages(scene_name, 'pose', print_warnings=False)
        # the devkit raises AssertionError for non-standard scene names and a bare Exception for blacklisted scenes
        except Exception as err:  # noqa: BLE001 - the devkit raises bare Exception / AssertionError here
            self.logger.warning(f'{scene_name}: no CAN bus pose messages ({err}); deriving can_bus from ego poses')
            return None
        if not messages:
            self.logger.warning(f'{scene_name}: empty CAN bus pose file; deriving can_bus from ego poses')
            return None
        return sorted(messages, key=lambda m: m['utime'])

    @staticmethod
    def last_message_before(messages: List[dict], utime: int) -> dict:
        """The last message with ``utime <= utime`` (the first message if all are later, as BEVFormer)."""
        times = np.fromiter((m['utime'] for m in messages), dtype=np.int64, count=len(messages))
        idx = int(np.searchsorted(times, utime, side='right')) - 1
        return messages[max(idx, 0)]
