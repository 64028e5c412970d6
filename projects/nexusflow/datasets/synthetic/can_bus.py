"""The CAN bus expansion's ``pose`` messages of a synthetic scene (``can_bus/<scene>_pose.json``).

``nuscenes.can_bus.can_bus_api.NuScenesCanBus.get_messages(scene, 'pose')`` reads this file as a list of dicts.
Keys as in the real files (alphabetical, which BEVFormer's converter relies on: after popping utime, pos and
orientation it appends the remaining keys in order): ``accel`` (ego frame, m/s^2, the IMU's specific force, so z
holds +9.80665 from gravity), ``orientation`` (ego -> global quaternion wxyz), ``pos`` (global, m, z = 0),
``rotation_rate`` (ego frame, rad/s), ``utime`` (µs), ``vel`` (ego frame, m/s). 50 Hz from TIME_PAD before the
first keyframe to TIME_PAD after the last, on the same microsecond clock as the samples, so that every keyframe
timestamp has a message with exactly the keyframe's ego pose. Scene names must avoid the devkit's hard-coded
blacklist of scenes without CAN data (see ``CAN_BLACKLIST``).
"""
import json
from typing import Dict, List

import numpy as np

from .geometry import yaw_to_quaternion
from .traffic import TIME_PAD, Mover

CAN_PERIOD_US = 20_000           # 50 Hz
GRAVITY = 9.80665
CAN_BLACKLIST = frozenset([161, 162, 163, 164, 165, 166, 167, 168, 170, 171, 172, 173, 174, 175, 176,
                           309, 310, 311, 312, 313, 314])   # ``NuScenesCanBus.can_blacklist`` (devkit 1.2.0)


def pose_messages(ego: Mover, first_utime: int, duration: float) -> List[Dict]:
    """50 Hz pose messages of the ego covering ``[-TIME_PAD, duration + TIME_PAD]`` s around the first keyframe.

    Args:
        ego (Mover): the ego's motion; time 0 is the first keyframe.
        first_utime (int): timestamp of the first keyframe, microseconds.
        duration (float): seconds from the first to the last keyframe.

    Returns:
        list[dict]: messages ordered by ``utime``.
    """
    pad = int(TIME_PAD * 1e6)
    offsets = np.arange(-pad, int(round(duration * 1e6)) + pad + 1, CAN_PERIOD_US)
    t = offsets / 1e6
    xy, yaw = ego.poses(t)
    speed, accel = ego.velocity(t), ego.acceleration(t)
    yaw_rate = np.gradient(np.unwrap(yaw), t)
    messages = []
    for k in range(len(t)):
        messages.append({'accel': [float(accel[k]), float(speed[k] * yaw_rate[k]), GRAVITY],
                         'orientation': yaw_to_quaternion(float(yaw[k])),
                         'pos': [float(xy[k, 0]), float(xy[k, 1]), 0.0],
                         'rotation_rate': [0.0, 0.0, float(yaw_rate[k])],
                         'utime': int(first_utime + offsets[k]),
                         'vel': [float(speed[k]), 0.0, 0.0]})
    return messages


def write_pose_messages(path: str, messages: List[Dict]) -> None:
    """Write the messages as the devkit expects them (a JSON list)."""
    with open(path, 'w') as f:
        f.write(json.dumps(messages))
