"""The synthetic nuScenes generator: devkit compatibility, annotation consistency, rendering and domain gap."""
import json
import math
import os

import cv2
import numpy as np
import pytest
from pyquaternion import Quaternion

from projects.nexusflow.datasets.synthetic import SPLIT_NAMES, generate_synthetic_nuscenes
from projects.nexusflow.datasets.synthetic.generator import scene_names, val_indices
from projects.nexusflow.datasets.synthetic.geometry import arcline_poses, make_arcline, rectangles_overlap
from projects.nexusflow.datasets.synthetic.rig import CAMERA_CHANNELS
from projects.nexusflow.datasets.synthetic.styles import CITY_STYLES

VERSION = 'v1.0-synth'
IMG_SIZE = (200, 113)
SAMPLES = 5


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp('synth')
    generate_synthetic_nuscenes(str(path), scenes_per_city=2, samples_per_scene=SAMPLES, seed=0, img_size=IMG_SIZE,
                                version=VERSION)
    return str(path)


@pytest.fixture(scope='module')
def nusc(root):
    from nuscenes import NuScenes
    return NuScenes(version=VERSION, dataroot=root, verbose=False)


@pytest.fixture(scope='module')
def maps(root):
    from nuscenes.map_expansion.map_api import NuScenesMap
    return {loc: NuScenesMap(root, loc) for loc in CITY_STYLES}


def _location(nusc, sample):
    return nusc.get('log', nusc.get('scene', sample['scene_token'])['log_token'])['location']


def test_tables_samples_and_sensors(nusc, root):
    assert {name: len(getattr(nusc, name)) > 0 for name in nusc.table_names} == \
        {name: True for name in nusc.table_names}
    assert len(nusc.table_names) == 13
    assert len(nusc.scene) == 4 and [s['name'] for s in nusc.scene] == scene_names(4)
    assert {log['location'] for log in nusc.log} == set(CITY_STYLES)
    for scene in nusc.scene:
        tokens, token = [], scene['first_sample_token']
        while token:
            tokens.append(token)
            token = nusc.get('sample', token)['next']
        assert len(tokens) == scene['nbr_samples'] == SAMPLES and tokens[-1] == scene['last_sample_token']
        stamps = [nusc.get('sample', t)['timestamp'] for t in tokens]
        assert all(isinstance(t, int) for t in stamps) and np.all(np.diff(stamps) == 500000)
        for t in tokens:
            sample = nusc.get('sample', t)
            assert sorted(sample['data']) == sorted(CAMERA_CHANNELS + ('LIDAR_TOP',))
            for channel in CAMERA_CHANNELS:
                sd = nusc.get('sample_data', sample['data'][channel])
                assert sd['filename'].startswith(f'samples/{channel}/') and sd['timestamp'] == sample['timestamp']
                image = cv2.imread(os.path.join(root, sd['filename']))
                assert image.shape == (IMG_SIZE[1], IMG_SIZE[0], 3) == (sd['height'], sd['width'], 3)
            pose = nusc.get('ego_pose', nusc.get('sample_data', sample['data']['LIDAR_TOP'])['ego_pose_token'])
            assert pose['translation'][2] == 0.0


def test_calibration_follows_the_nuscenes_rig(nusc):
    yaws = {'CAM_FRONT': 0, 'CAM_FRONT_RIGHT': -55, 'CAM_FRONT_LEFT': 55, 'CAM_BACK': 180, 'CAM_BACK_LEFT': 110,
            'CAM_BACK_RIGHT': -110}
    for cs in nusc.calibrated_sensor:
        channel = nusc.get('sensor', cs['sensor_token'])['channel']
        rot = Quaternion(cs['rotation']).rotation_matrix
        if channel == 'LIDAR_TOP':
            assert np.allclose(cs['translation'], [0.943713, 0.0, 1.84023])
            assert np.allclose(rot @ [0, 1, 0], [1, 0, 0]) and cs['camera_intrinsic'] == []   # lidar y = forward
            continue
        optical_axis = rot @ [0, 0, 1]
        assert math.degrees(math.atan2(optical_axis[1], optical_axis[0])) == pytest.approx(yaws[channel], abs=1e-6)
        assert np.allclose(rot @ [0, 1, 0], [0, 0, -1])             # image y points down
        k = np.array(cs['camera_intrinsic'])
        assert k[0, 2] == IMG_SIZE[0] / 2 and k[1, 2] == IMG_SIZE[1] / 2
        fx_at_1600, fy_at_900 = k[0, 0] * 1600 / IMG_SIZE[0], k[1, 1] * 900 / IMG_SIZE[1]
        assert fx_at_1600 == pytest.approx(fy_at_900)
        assert fx_at_1600 == pytest.approx(809.2) if channel == 'CAM_BACK' else 1250 < fx_at_1600 < 1280
        assert 1.4 < cs['translation'][2] < 1.7


def test_instance_chains_and_annotation_values(nusc):
    for inst in nusc.instance:
        anns, token = [], inst['first_annotation_token']
        while token:
            anns.append(nusc.get('sample_annotation', token))
            token = anns[-1]['next']
        assert len(anns) == inst['nbr_annotations'] and anns[-1]['token'] == inst['last_annotation_token']
        assert all(a['instance_token'] == inst['token'] for a in anns)
        assert all(b['prev'] == a['token'] for a, b in zip(anns[:-1], anns[1:]))
        assert all(nusc.get('sample', a['sample_token'])['next'] == b['sample_token'] for a, b in zip(anns, anns[1:]))
        category = nusc.get('category', inst['category_token'])['name']
        assert category in ('vehicle.car', 'vehicle.truck', 'vehicle.bus.rigid', 'human.pedestrian.adult')
        for a in anns:
            w, l, h = a['size']
            assert a['translation'][2] == pytest.approx(h / 2) and a['num_lidar_pts'] > 0
            assert len(a['attribute_tokens']) == 1 and a['visibility_token'] in ('1', '2', '3', '4')
            assert (l > w) if category.startswith('vehicle') else (0.5 < w < 1.0)
    # velocities implied by motion: moving vehicles move at 3-13 m/s
    speeds = [np.linalg.norm(nusc.box_velocity(a['token'])[:2]) for a in nusc.sample_annotation
              if a['category_name'] == 'vehicle.car']
    assert 3.0 < np.median(speeds) < 13.0


def test_every_sample_has_nearby_objects(nusc):
    for sample in nusc.sample:
        pose = nusc.get('ego_pose', nusc.get('sample_data', sample['data']['LIDAR_TOP'])['ego_pose_token'])
        near = [a for a in sample['anns']
                if np.linalg.norm(np.subtract(nusc.get('sample_annotation', a)['translation'][:2],
                                              pose['translation'][:2])) < 50.0]
        assert len(near) >= 3


def test_splits_cover_both_cities_and_are_disjoint(nusc, root):
    with open(os.path.join(root, VERSION, 'splits.json')) as f:
        splits = json.load(f)
    assert sorted(splits) == sorted(SPLIT_NAMES)
    assert not set(splits['synth_train']) & set(splits['synth_val'])
    assert sorted(splits['synth_train'] + splits['synth_val']) == sorted(s['name'] for s in nusc.scene)
    city = {s['name']: nusc.get('log', s['log_token'])['location'] for s in nusc.scene}
    for names in splits.values():
        assert {city[n] for n in names} == set(CITY_STYLES)
    assert val_indices(2) == [1] and val_indices(1) == [0] and val_indices(8) == [2, 6]
    assert len(val_indices(100)) == 25


REFERENCE_LAYERS = {'polygon_token': 'polygon', 'polygon_tokens': 'polygon', 'line_token': 'line',
                    'from_edge_line_token': 'line', 'to_edge_line_token': 'line', 'node_token': 'node',
                    'node_tokens': 'node', 'exterior_node_tokens': 'node', 'drivable_area_token': 'drivable_area',
                    'road_segment_token': 'road_segment', 'road_block_token': 'road_block',
                    'ped_crossing_tokens': 'ped_crossing', 'traffic_light_tokens': 'traffic_light'}


def _references(record):
    """(key, token) pairs of every token reference inside a map record, nested lists and dicts included."""
    for key, value in record.items():
        if key in REFERENCE_LAYERS:
            for token in (value if isinstance(value, list) else [value]):
                yield key, token
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from _references(item)


def test_map_expansion_json_tokens_resolve(root):
    for loc in CITY_STYLES:
        with open(os.path.join(root, 'maps', 'expansion', f'{loc}.json')) as f:
            doc = json.load(f)
        tokens = {layer: {r['token'] for r in records} for layer, records in doc.items() if isinstance(records, list)
                  and layer != 'canvas_edge'}
        count = 0
        for layer, records in doc.items():
            for record in (records if isinstance(records, list) and layer != 'canvas_edge' else []):
                for key, token in _references(record):
                    assert token in tokens[REFERENCE_LAYERS[key]], (layer, key, token)
                    count += 1
        assert count > 10000 and doc['version'] == '1.3' and doc['traffic_light'] == []


def test_map_expansion_masks_and_ego_on_road(nusc, maps, root):
    for loc, nmap in maps.items():
        for layer in ('road_segment', 'lane', 'ped_crossing', 'walkway', 'stop_line', 'lane_connector'):
            polygons = [nmap.extract_polygon(r['polygon_token']) for r in getattr(nmap, layer)]
            assert all(p.is_valid and p.exterior.is_ccw for p in polygons), layer
        area = [nmap.extract_polygon(t) for t in nmap.drivable_area[0]['polygon_tokens']]
        assert all(p.is_valid and p.exterior.is_ccw and len(p.interiors) > 10 for p in area)
        for layer in ('road_divider', 'lane_divider'):          # straight lines: clipping never splits them
            for rec in getattr(nmap, layer):
                pts = np.array([[n['x'], n['y']] for n in (nmap.get('node', t) for t in rec['node_tokens'])])
                d, axis = pts - pts[0], (pts[-1] - pts[0]) / np.linalg.norm(pts[-1] - pts[0])
                assert np.abs(d[:, 0] * axis[1] - d[:, 1] * axis[0]).max() < 1e-3   # off-line distance, m
        for token, links in nmap.connectivity.items():
            assert all(t in nmap.arcline_path_3 for t in links['incoming'] + links['outgoing'] + [token])
    for sample in nusc.sample:
        pose = nusc.get('ego_pose', nusc.get('sample_data', sample['data']['LIDAR_TOP'])['ego_pose_token'])
        x, y = pose['translation'][:2]
        nmap = maps[_location(nusc, sample)]
        yaw = math.degrees(Quaternion(pose['rotation']).yaw_pitch_roll[0])
        masks = nmap.get_map_mask((x, y, 60.0, 30.0), yaw, ['drivable_area', 'lane', 'ped_crossing', 'lane_divider',
                                                            'road_divider'], (120, 60))
        assert masks.shape == (5, 120, 60) and masks[0].mean() > 0.1 and masks[1].any()
        assert masks[0][60, 30] == 1                                 # the ego stands on the drivable area
        assert nmap.record_on_point(x, y, 'drivable_area') != ''
    assert any(maps[loc].get_map_mask((n['x'], n['y'], 40, 40), 0, ['ped_crossing'], (80, 80)).any()
               for loc in maps for n in maps[loc].node[::500])
    for loc, style in CITY_STYLES.items():
        prior = cv2.imread(os.path.join(root, 'maps', f'{style.map_hash}.png'), cv2.IMREAD_UNCHANGED)
        assert prior.ndim == 2 and set(np.unique(prior)) == {0, 255}
        assert os.path.exists(os.path.join(root, 'maps', 'basemap', f'{loc}.png'))


def test_tracking_eval_on_ground_truth_is_perfect(nusc, root, tmp_path):
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.tracking.evaluate import TrackingEval
    from nuscenes.eval.tracking.utils import category_to_tracking_name
    with open(os.path.join(root, VERSION, 'splits.json')) as f:
        val = set(json.load(f)['synth_val'])
    rng = np.random.default_rng(0)
    results = {}
    for sample in nusc.sample:
        if nusc.get('scene', sample['scene_token'])['name'] not in val:
            continue
        boxes = []
        for token in sample['anns']:
            ann = nusc.get('sample_annotation', token)
            boxes.append({'sample_token': sample['token'], 'translation': ann['translation'], 'size': ann['size'],
                          'rotation': ann['rotation'],
                          'velocity': [float(v) for v in np.nan_to_num(nusc.box_velocity(token)[:2])],
                          'tracking_id': ann['instance_token'],
                          'tracking_name': category_to_tracking_name(ann['category_name']),
                          'tracking_score': float(rng.uniform(0.5, 1.0))})
        results[sample['token']] = boxes
    path = tmp_path / 'results.json'
    path.write_text(json.dumps({'meta': {'use_camera': True, 'use_lidar': False, 'use_radar': False,
                                         'use_map': False, 'use_external': False}, 'results': results}))
    evaluator = TrackingEval(config_factory('tracking_nips_2019'), str(path), 'synth_val', str(tmp_path / 'out'),
                             VERSION, root, verbose=False)
    metrics = evaluator.main(render_curves=False)
    assert metrics['amota'] == pytest.approx(1.0) and metrics['ids'] == 0 and metrics['recall'] == pytest.approx(1.0)


def test_can_bus_pose_messages_match_ego_poses(nusc, root):
    from nuscenes.can_bus.can_bus_api import NuScenesCanBus
    can = NuScenesCanBus(dataroot=root)
    for scene in nusc.scene:
        msgs = can.get_messages(scene['name'], 'pose')
        utime = np.array([m['utime'] for m in msgs])
        assert np.all(np.diff(utime) == 20000)                          # 50 Hz
        samples = [nusc.get('sample', scene['first_sample_token'])]
        while samples[-1]['next']:
            samples.append(nusc.get('sample', samples[-1]['next']))
        assert utime[0] < samples[0]['timestamp'] and utime[-1] > samples[-1]['timestamp']
        for sample in samples:
            pose = nusc.get('ego_pose', nusc.get('sample_data', sample['data']['LIDAR_TOP'])['ego_pose_token'])
            msg = msgs[int(np.nonzero(utime == sample['timestamp'])[0][0])]
            assert np.allclose(msg['pos'], pose['translation']) and np.allclose(msg['orientation'], pose['rotation'])
        pos = np.array([m['pos'] for m in msgs])[:, :2]
        speed = np.linalg.norm(np.diff(pos, axis=0), axis=1) / 0.02
        assert np.allclose(speed, np.array([m['vel'][0] for m in msgs])[1:], atol=0.1)
        assert 5.0 * 0.85 <= np.mean(speed) <= 10.0 * 1.15
        assert np.allclose([m['accel'][2] for m in msgs], 9.80665)


BOX_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]


def _image_extent(box, intrinsic, near=0.5):
    """(u0, v0, u1, v1) of the part of a box (camera frame) at depth >= near, projected; None if all behind."""
    from nuscenes.utils.geometry_utils import view_points
    corners = box.corners()
    points = [corners[:, i] for i in range(8) if corners[2, i] >= near]
    for i, j in BOX_EDGES:
        a, b = corners[:, i], corners[:, j]
        if (a[2] - near) * (b[2] - near) < 0:
            points.append(a + (near - a[2]) / (b[2] - a[2]) * (b - a))
    if not points:
        return None
    uv = view_points(np.stack(points, axis=1), intrinsic, normalize=True)[:2]
    return (*uv.min(axis=1), *uv.max(axis=1))


def _visible_centre_colours(nusc, sample, channel):
    """Mean 3x3 colours at the projected centres of boxes 1-30 m in front of a camera that no nearer box covers."""
    from nuscenes.utils.geometry_utils import BoxVisibility, view_points
    path, boxes, intrinsic = nusc.get_sample_data(sample['data'][channel], box_vis_level=BoxVisibility.NONE)
    image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB).astype(np.float64)
    intrinsic = np.array(intrinsic)
    extents, colours = [], []
    for box in sorted(boxes, key=lambda b: np.linalg.norm(b.center)):
        u, v = view_points(box.center[:, None], intrinsic, normalize=True)[:2, 0]
        covered = any(e is not None and e[0] <= u <= e[2] and e[1] <= v <= e[3] for e in extents)
        extents.append(_image_extent(box, intrinsic))
        in_view = (box.corners()[2] > 0.5).all() and 2 <= u < IMG_SIZE[0] - 2 and 2 <= v < IMG_SIZE[1] - 2
        if in_view and not covered and box.center[2] < 30.0:
            colours.append(image[int(v) - 1:int(v) + 2, int(u) - 1:int(u) + 2].mean(axis=(0, 1)))
    return colours


def test_boxes_are_rendered_where_annotations_project(nusc):
    checked = 0
    for sample in nusc.sample:
        style = CITY_STYLES[_location(nusc, sample)]
        road = np.asarray(style.asphalt, dtype=np.float64) * style.brightness
        for channel in CAMERA_CHANNELS:
            for colour in _visible_centre_colours(nusc, sample, channel):
                # far from asphalt at any scene brightness (0.9-1.1) plus mottle and noise
                gap = min(np.linalg.norm(colour - road * g) for g in np.linspace(0.85, 1.15, 13))
                assert gap > 12.0, (sample['token'], channel, colour, road)
                checked += 1
    assert checked >= 40


def test_cities_look_different_and_drive_on_their_side(nusc, root, maps):
    means = {loc: [] for loc in CITY_STYLES}
    offsets = {loc: [] for loc in CITY_STYLES}
    for sample in nusc.sample:
        loc = _location(nusc, sample)
        for channel in CAMERA_CHANNELS:
            path = nusc.get_sample_data_path(sample['data'][channel])
            means[loc].append(cv2.imread(path)[..., ::-1].reshape(-1, 3).mean(axis=0))
        dividers = [np.array([[n['x'], n['y']] for n in (maps[loc].get('node', t) for t in rec['node_tokens'])])
                    for rec in maps[loc].road_divider]
        for token in sample['anns']:
            ann = nusc.get('sample_annotation', token)
            if not ann['category_name'].startswith('vehicle'):
                continue
            yaw = Quaternion(ann['rotation']).yaw_pitch_roll[0]
            heading = np.array([math.cos(yaw), math.sin(yaw)])
            p = np.array(ann['translation'][:2])
            for line in dividers:
                a, b = line[0], line[-1]
                axis = (b - a) / np.linalg.norm(b - a)
                t = np.dot(p - a, axis)
                rel = p - (a + t * axis)
                if 0 < t < np.linalg.norm(b - a) and np.linalg.norm(rel) < 8.0 and abs(np.dot(axis, heading)) > 0.95:
                    offsets[loc].append(heading[0] * rel[1] - heading[1] * rel[0])   # > 0: left of centre line
    boston, singapore = (np.mean(means[loc], axis=0) for loc in ('boston-seaport', 'singapore-onenorth'))
    assert np.linalg.norm(boston - singapore) > 15.0
    assert len(offsets['boston-seaport']) >= 10 and len(offsets['singapore-onenorth']) >= 10
    assert np.mean(offsets['boston-seaport']) < -1.0 < 1.0 < np.mean(offsets['singapore-onenorth'])
    assert all(o < 0 for o in offsets['boston-seaport']) and all(o > 0 for o in offsets['singapore-onenorth'])


def _read_tree(path):
    out = {}
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            with open(full, 'rb') as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    kwargs = dict(scenes_per_city=1, samples_per_scene=2, img_size=(96, 54))
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        generate_synthetic_nuscenes(str(tmp_path / name), seed=seed, **kwargs)
    a, b, c = (_read_tree(tmp_path / name) for name in 'abc')
    assert a == b
    assert a.keys() != c.keys() or any(a[k] != c[k] for k in a)
    assert a['v1.0-synth/sample_annotation.json'] != c['v1.0-synth/sample_annotation.json']


@pytest.mark.parametrize('kwargs, error', [
    (dict(scenes_per_city=0), ValueError), (dict(samples_per_scene=1), ValueError),
    (dict(img_size=(32, 18)), ValueError), (dict(img_size=(400,)), ValueError),
    (dict(version='synth'), ValueError), (dict(version='v2.0-synth'), ValueError),
    (dict(scenes_per_city=1.5), TypeError), (dict(seed=-1), ValueError)])
def test_bad_arguments_are_rejected(tmp_path, kwargs, error):
    with pytest.raises(error):
        generate_synthetic_nuscenes(str(tmp_path), **kwargs)
    assert not os.listdir(tmp_path)


def test_geometry_helpers():
    from nuscenes.map_expansion.arcline_path_utils import discretize
    arc = make_arcline((10.0, -5.0, 0.3), 'LSL', 8.0, (2.0, 5.0, 8.0 * math.pi / 2))
    ref = np.array(discretize(arc, 0.5))
    mine = arcline_poses(arc, np.linspace(0.0, sum(arc['segment_length']), len(ref)))
    assert np.abs(ref[:, :2] - mine[:, :2]).max() < 1e-9
    assert arc['end_pose'][2] == pytest.approx(0.3 + math.pi / 2 + 2.0 / 8.0)
    a = np.array([0.0, 0.0, 4.0, 2.0, 0.0])
    assert rectangles_overlap(a, np.array([2.9, 0.0, 4.0, 2.0, math.pi / 2]))          # x ranges overlap by 0.1
    assert not rectangles_overlap(a, np.array([3.1, 0.0, 4.0, 2.0, math.pi / 2]))
    assert not rectangles_overlap(a, np.array([2.8, 2.8, 2.0, 2.0, math.pi / 4]))       # diagonal gap
    assert rectangles_overlap(a, np.array([2.8, 2.8, 2.0, 2.0, math.pi / 4]), margin=0.4)
    names = scene_names(200)
    assert names[159:163] == ['scene-0160', 'scene-0169', 'scene-0177', 'scene-0178']   # CAN bus blacklist
