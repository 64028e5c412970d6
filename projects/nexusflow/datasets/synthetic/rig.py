"""The nuScenes sensor rig: six cameras and the top lidar, with calibrations close to the real car's.

Ego frame: x forward, y left, z up, origin at the rear axle on the ground. Camera frame: x right, y down, z along
the optical axis. Camera yaws (optical axis, counter-clockwise from ego +x): front 0, front-right -55, front-left
+55, back 180, back-left +110, back-right -110 degrees; no pitch or roll. Focal lengths are nuScenes' at 1600x900
(about 1266 px for the front and side cameras, 809 px for the wide back camera), scaled to the image size, with
the principal point at the image centre. ``LIDAR_TOP`` sits at [0.943713, 0, 1.84023] m rotated -90 deg about z,
so that the lidar frame has x to the right of the car and y forward, as in nuScenes.
"""
import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
from pyquaternion import Quaternion

# channel, yaw (deg), translation in the ego frame (m), focal length at 1600 x 900 (px)
CAMERA_SPECS: Tuple[Tuple[str, float, Tuple[float, float, float], float], ...] = (
    ('CAM_FRONT', 0.0, (1.70, 0.016, 1.51), 1266.4),
    ('CAM_FRONT_RIGHT', -55.0, (1.55, -0.49, 1.50), 1260.8),
    ('CAM_FRONT_LEFT', 55.0, (1.52, 0.49, 1.51), 1272.6),
    ('CAM_BACK', 180.0, (0.03, 0.0, 1.58), 809.2),
    ('CAM_BACK_LEFT', 110.0, (1.04, 0.48, 1.59), 1256.7),
    ('CAM_BACK_RIGHT', -110.0, (1.01, -0.48, 1.56), 1259.5),
)
CAMERA_CHANNELS = tuple(spec[0] for spec in CAMERA_SPECS)
LIDAR_TRANSLATION = (0.943713, 0.0, 1.84023)
LIDAR_YAW_DEG = -90.0
REFERENCE_SIZE = (1600, 900)   # image size (W, H) the focal lengths refer to


@dataclass(frozen=True)
class Sensor:
    """One sensor and its calibration (``calibrated_sensor`` record content).

    ``translation`` (m) and ``rotation`` (quaternion wxyz) map sensor coordinates into the ego frame;
    ``intrinsic`` is the 3x3 camera matrix in pixels of the written image, empty for the lidar.
    """
    channel: str
    modality: str
    translation: Tuple[float, float, float]
    rotation: Tuple[float, float, float, float]
    intrinsic: Tuple[Tuple[float, ...], ...]

    @property
    def sensor2ego(self) -> np.ndarray:
        """float64 ``[4, 4]`` homogeneous transform sensor -> ego."""
        mat = np.eye(4)
        mat[:3, :3] = Quaternion(self.rotation).rotation_matrix
        mat[:3, 3] = self.translation
        return mat


def camera_rotation(yaw_deg: float) -> np.ndarray:
    """Rotation ``[3, 3]`` camera -> ego for a level camera looking along ``yaw_deg``: columns are the camera's
    x (right), y (down) and z (optical axis) expressed in the ego frame."""
    yaw = math.radians(yaw_deg)
    right = [math.sin(yaw), -math.cos(yaw), 0.0]
    down = [0.0, 0.0, -1.0]
    forward = [math.cos(yaw), math.sin(yaw), 0.0]
    return np.array([right, down, forward]).T


def build_rig(img_size: Tuple[int, int]) -> List[Sensor]:
    """The six cameras (nuScenes order) and ``LIDAR_TOP`` for images of ``img_size`` = (W, H) pixels."""
    width, height = img_size
    sx, sy = width / REFERENCE_SIZE[0], height / REFERENCE_SIZE[1]
    sensors = []
    for channel, yaw_deg, translation, focal in CAMERA_SPECS:
        intrinsic = ((focal * sx, 0.0, width / 2.0), (0.0, focal * sy, height / 2.0), (0.0, 0.0, 1.0))
        rotation = Quaternion(matrix=camera_rotation(yaw_deg))
        sensors.append(Sensor(channel, 'camera', translation, tuple(float(v) for v in rotation.elements), intrinsic))
    half = math.radians(LIDAR_YAW_DEG) / 2.0
    sensors.append(Sensor('LIDAR_TOP', 'lidar', LIDAR_TRANSLATION, (math.cos(half), 0.0, 0.0, math.sin(half)), ()))
    return sensors
