"""The 13 nuScenes v1.0 tables of the synthetic set (``<version>/*.json``), built scene by scene.

Record fields follow the devkit schema (``docs/schema_nuscenes.md``). Conventions kept from real nuScenes:
integer microsecond timestamps, keyframes 0.5 s apart; one ``ego_pose`` per ``sample_data`` (the ego pose at the
sample time, z = 0); each channel's ``sample_data`` linked prev/next through the scene; ``LIDAR_TOP`` keyframes
exist for every sample (the devkit's evaluation needs their ego poses) with an empty ``.pcd.bin`` placeholder;
log files named ``<vehicle>-<date>-<time><utc offset>``; sample files ``<logfile>__<CHANNEL>__<utime>.<ext>``.
"""
import datetime as dt
import json
import os
from typing import Dict, List, Sequence, Tuple

from .annotations import Annotation
from .geometry import yaw_to_quaternion
from .rig import Sensor
from .styles import CityStyle
from .tokens import TokenFactory
from .traffic import KEYFRAME_PERIOD, ScenePlan

TABLE_NAMES = ('category', 'attribute', 'visibility', 'instance', 'sensor', 'calibrated_sensor', 'ego_pose', 'log',
               'scene', 'sample', 'sample_data', 'sample_annotation', 'map')
SCENES_PER_LOG = 4
SCENE_SLOT_US = 60_000_000       # a log's scenes start at least 60 s apart

CATEGORIES = (
    ('animal', 'All animals, e.g. cats, rats, dogs, deer, birds.'),
    ('human.pedestrian.adult', 'Adult subcategory.'),
    ('human.pedestrian.child', 'Child subcategory.'),
    ('human.pedestrian.construction_worker', 'Construction worker.'),
    ('human.pedestrian.personal_mobility', 'A small electric or self-propelled vehicle with a person on it.'),
    ('human.pedestrian.police_officer', 'Police officer.'),
    ('human.pedestrian.stroller', 'Strollers.'),
    ('human.pedestrian.wheelchair', 'Wheelchairs.'),
    ('movable_object.barrier', 'Temporary road barrier placed in the scene to redirect traffic.'),
    ('movable_object.debris', 'Movable object that is left on the driveable surface.'),
    ('movable_object.pushable_pullable', 'Objects that a pedestrian may push or pull.'),
    ('movable_object.trafficcone', 'All types of traffic cone.'),
    ('static_object.bicycle_rack', 'Area or device intended to park or secure the bicycles in a row.'),
    ('vehicle.bicycle', 'Human or electric powered 2-wheeled vehicle designed to travel at lower speeds.'),
    ('vehicle.bus.bendy', 'Bendy bus subcategory.'),
    ('vehicle.bus.rigid', 'Rigid bus subcategory.'),
    ('vehicle.car', 'Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, SUVs, vans.'),
    ('vehicle.construction', 'Vehicles primarily designed for construction.'),
    ('vehicle.emergency.ambulance', 'All types of ambulances.'),
    ('vehicle.emergency.police', 'All types of police vehicles.'),
    ('vehicle.motorcycle', 'Gasoline or electric powered 2-wheeled vehicle designed to move rapidly.'),
    ('vehicle.trailer', 'Any vehicle trailer, both for trucks, cars and bikes.'),
    ('vehicle.truck', 'Vehicles primarily designed to haul cargo including pick-ups, lorries and trucks.'),
)
ATTRIBUTES = (
    ('vehicle.moving', 'Vehicle is moving.'),
    ('vehicle.stopped', 'Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move.'),
    ('vehicle.parked', 'Vehicle is stationary (usually for longer duration) with no immediate intent to move.'),
    ('cycle.with_rider', 'There is a rider on the bicycle or motorcycle.'),
    ('cycle.without_rider', 'There is NO rider on the bicycle or motorcycle.'),
    ('pedestrian.sitting_lying_down', 'The human is sitting or lying down.'),
    ('pedestrian.standing', 'The human is standing.'),
    ('pedestrian.moving', 'The human is moving.'),
)
VISIBILITIES = (('1', 'v0-40', 'visibility of whole object is between 0 and 40%'),
                ('2', 'v40-60', 'visibility of whole object is between 40 and 60%'),
                ('3', 'v60-80', 'visibility of whole object is between 60 and 80%'),
                ('4', 'v80-100', 'visibility of whole object is between 80 and 100%'))


def _linked(records: List[Dict]) -> List[Dict]:
    """Set ``prev`` / ``next`` of consecutive records ('' at the ends); returns the list."""
    for i, rec in enumerate(records):
        rec['prev'] = records[i - 1]['token'] if i > 0 else ''
        rec['next'] = records[i + 1]['token'] if i + 1 < len(records) else ''
    return records


class TableBuilder:
    """Collects the records of all tables.

    Args:
        tokens (TokenFactory): seeded token maker.
        rig (list[Sensor]): the six cameras and LIDAR_TOP.
        img_size (tuple[int, int]): written image size (W, H).
    """

    def __init__(self, tokens: TokenFactory, rig: Sequence[Sensor], img_size: Tuple[int, int]):
        self.tokens, self.rig, self.img_size = tokens, list(rig), tuple(img_size)
        self.tables: Dict[str, List[Dict]] = {name: [] for name in TABLE_NAMES}
        self.logs_by_location: Dict[str, List[str]] = {}
        self._static_tables()

    def _static_tables(self) -> None:
        t = self.tables
        t['category'] = [{'token': self.tokens('category', n), 'name': n, 'description': d} for n, d in CATEGORIES]
        t['attribute'] = [{'token': self.tokens('attribute', n), 'name': n, 'description': d} for n, d in ATTRIBUTES]
        t['visibility'] = [{'description': d, 'token': k, 'level': lv} for k, lv, d in VISIBILITIES]
        for s in self.rig:
            sensor = self.tokens('sensor', s.channel)
            t['sensor'].append({'token': sensor, 'channel': s.channel, 'modality': s.modality})
            t['calibrated_sensor'].append({'token': self.tokens('calibrated_sensor', s.channel), 'sensor_token': sensor,
                                           'translation': list(s.translation), 'rotation': list(s.rotation),
                                           'camera_intrinsic': [list(row) for row in s.intrinsic]})

    def add_log(self, style: CityStyle, index: int) -> Dict:
        """A log of ``style``'s city; returns {token, logfile, start_utime}."""
        start = dt.datetime.fromisoformat(style.first_date) + dt.timedelta(
            days=index, hours=style.start_hour, minutes=17 + 7 * (index % 5), seconds=36 + 3 * (index % 7))
        zone = dt.timezone(dt.timedelta(hours=style.utc_offset_hours))
        utc = f'{style.utc_offset_hours:+03d}00'
        logfile = f"{style.vehicle}-{start.strftime('%Y-%m-%d-%H-%M-%S')}{utc}"
        token = self.tokens('log', logfile)
        self.tables['log'].append({'token': token, 'logfile': logfile, 'vehicle': style.vehicle,
                                   'date_captured': start.strftime('%Y-%m-%d'), 'location': style.location})
        self.logs_by_location.setdefault(style.location, []).append(token)
        utime = int(round(start.replace(tzinfo=zone).timestamp())) * 1_000_000 + 412_470
        return {'token': token, 'logfile': logfile, 'start_utime': utime}

    def add_scene(self, name: str, log: Dict, slot: int, plan: ScenePlan,
                  annotations: List[List[Annotation]]) -> List[Dict]:
        """Add scene ``name`` (the ``slot``-th of its log) with its samples, sensor data, poses and annotations.

        Returns:
            list (one per keyframe) of {'token', 'utime', 'ego_xy' [2], 'ego_yaw', 'files': {channel: path}}.
        """
        scene = self.tokens('scene', name)
        start = log['start_utime'] + slot * max(SCENE_SLOT_US, int((plan.times[-1] + 40.0) * 1e6))
        frames = self._samples(name, scene, start, plan, log['logfile'])
        self._annotations(name, plan, annotations, frames)
        self.tables['scene'].append({'token': scene, 'log_token': log['token'], 'nbr_samples': len(frames),
                                     'first_sample_token': frames[0]['token'],
                                     'last_sample_token': frames[-1]['token'], 'name': name,
                                     'description': plan.description})
        return frames

    def _samples(self, name: str, scene: str, start: int, plan: ScenePlan, logfile: str) -> List[Dict]:
        """sample, sample_data and ego_pose records of a scene."""
        ego_xy, ego_yaw = plan.ego.poses(plan.times)
        frames, samples, per_channel = [], [], {s.channel: [] for s in self.rig}
        for k in range(len(plan.times)):
            utime = start + int(round(k * KEYFRAME_PERIOD * 1e6))
            sample = self.tokens('sample', name, k)
            samples.append({'token': sample, 'timestamp': utime, 'prev': '', 'next': '', 'scene_token': scene})
            files = {}
            for s in self.rig:
                pose = self.tokens('ego_pose', name, k, s.channel)
                self.tables['ego_pose'].append({'token': pose, 'timestamp': utime,
                                                'rotation': yaw_to_quaternion(float(ego_yaw[k])),
                                                'translation': [float(ego_xy[k, 0]), float(ego_xy[k, 1]), 0.0]})
                is_cam = s.modality == 'camera'
                files[s.channel] = (f"samples/{s.channel}/{logfile}__{s.channel}__{utime}"
                                    f"{'.jpg' if is_cam else '.pcd.bin'}")
                per_channel[s.channel].append({
                    'token': self.tokens('sample_data', name, k, s.channel), 'sample_token': sample,
                    'ego_pose_token': pose, 'calibrated_sensor_token': self.tokens('calibrated_sensor', s.channel),
                    'timestamp': utime, 'fileformat': 'jpg' if is_cam else 'pcd', 'is_key_frame': True,
                    'height': self.img_size[1] if is_cam else 0, 'width': self.img_size[0] if is_cam else 0,
                    'filename': files[s.channel], 'prev': '', 'next': ''})
            frames.append({'token': sample, 'utime': utime, 'ego_xy': ego_xy[k], 'ego_yaw': float(ego_yaw[k]),
                           'files': files})
        self.tables['sample'].extend(_linked(samples))
        for s in self.rig:
            self.tables['sample_data'].extend(_linked(per_channel[s.channel]))
        return frames

    def _annotations(self, name: str, plan: ScenePlan, annotations: List[List[Annotation]],
                     frames: List[Dict]) -> None:
        """instance and sample_annotation records (annotations sorted by keyframe, then mover)."""
        records = []
        for run in annotations:
            if not run:
                continue
            mover = plan.movers[run[0].mover]
            instance = self.tokens('instance', name, mover.name)
            chain = _linked([{
                'token': self.tokens('sample_annotation', name, mover.name, a.sample),
                'sample_token': frames[a.sample]['token'], 'instance_token': instance, 'visibility_token': a.visibility,
                'attribute_tokens': [self.tokens('attribute', a.attribute)], 'translation': list(a.translation),
                'size': list(a.size), 'rotation': list(a.rotation), 'prev': '', 'next': '',
                'num_lidar_pts': a.num_lidar_pts, 'num_radar_pts': 0} for a in run])
            self.tables['instance'].append({'token': instance,
                                            'category_token': self.tokens('category', mover.category.category),
                                            'nbr_annotations': len(chain), 'first_annotation_token': chain[0]['token'],
                                            'last_annotation_token': chain[-1]['token']})
            records.extend((a.sample, a.mover, rec) for a, rec in zip(run, chain))
        self.tables['sample_annotation'].extend(rec for _, _, rec in sorted(records, key=lambda r: r[:2]))

    def add_maps(self, styles: Sequence[CityStyle]) -> None:
        """One ``map`` record per city (its semantic-prior PNG) listing the city's logs."""
        for style in styles:
            self.tables['map'].append({'category': 'semantic_prior', 'token': self.tokens('map', style.location),
                                       'filename': f'maps/{style.map_hash}.png',
                                       'log_tokens': self.logs_by_location.get(style.location, [])})

    def write(self, folder: str) -> None:
        """Write ``<folder>/<table>.json`` for all 13 tables."""
        os.makedirs(folder, exist_ok=True)
        for name in TABLE_NAMES:
            with open(os.path.join(folder, f'{name}.json'), 'w') as f:
                f.write(json.dumps(self.tables[name]))   # json.dumps uses the C encoder, json.dump does not
