"""Map GT rasterisation: exact pixels on a hand-made map, agreement with the devkit, synthetic-set coverage."""
import json
import os

import numpy as np
import pytest
from pyquaternion import Quaternion

from projects.nexusflow.datasets.map_rasterizer import MapRasterizer, load_location_geometry
from projects.nexusflow.datasets.transforms import LoadMapAnnotations

RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)
LOCATION = 'boston-seaport'


def _toy_map(root):
    """An east-west road (y in [90, 110]) with a divider at y = 100, a north-south lane (x in [95, 105]) with a
    lane divider at x = 100, and a crossing x in [110, 114], y in [90, 110]; global frame, metres."""
    tables = {key: [] for key in ('node', 'line', 'polygon')}

    def node(x, y):
        tables['node'].append(dict(token=f'n{len(tables["node"])}', x=float(x), y=float(y)))
        return tables['node'][-1]['token']

    def polygon(points):
        tables['polygon'].append(dict(token=f'p{len(tables["polygon"])}', holes=[],
                                      exterior_node_tokens=[node(*p) for p in points]))
        return tables['polygon'][-1]['token']

    def line(points):
        tables['line'].append(dict(token=f'l{len(tables["line"])}', node_tokens=[node(*p) for p in points]))
        return tables['line'][-1]['token']

    east_west = [(0, 90), (300, 90), (300, 110), (0, 110)]
    north_south = [(95, 0), (105, 0), (105, 300), (95, 300)]
    data = dict(version='1.3', canvas_edge=[300.0, 300.0], connectivity={}, arcline_path_3={})
    data['drivable_area'] = [dict(token='da', polygon_tokens=[polygon(east_west), polygon(north_south)])]
    data['road_segment'] = [dict(token='rs', polygon_token=polygon(east_west), is_intersection=False,
                                 drivable_area_token='da')]
    data['lane'] = [dict(token='ln', polygon_token=polygon(north_south), left_lane_divider_segments=[],
                         right_lane_divider_segments=[])]
    data['ped_crossing'] = [dict(token='pc', polygon_token=polygon([(110, 90), (114, 90), (114, 110), (110, 110)]))]
    data['road_divider'] = [dict(token='rd', line_token=line([(0, 100), (300, 100)]))]
    data['lane_divider'] = [dict(token='ld', line_token=line([(100, 0), (100, 300)]))]
    for layer in ('road_block', 'walkway', 'stop_line', 'carpark_area', 'traffic_light', 'lane_connector'):
        data[layer] = []
    data.update(tables)
    os.makedirs(os.path.join(root, 'maps', 'expansion'))
    with open(os.path.join(root, 'maps', 'expansion', f'{LOCATION}.json'), 'w') as f:
        json.dump(data, f)
    return str(root)


def _lidar2global(x, y, yaw):
    pose = np.eye(4)
    pose[:3, :3] = Quaternion(axis=[0, 0, 1], angle=yaw).rotation_matrix
    pose[:3, 3] = [x, y, 1.84]
    return pose


def _devkit_mask(map_root, location, lidar2global, canvas, layer='drivable_area'):
    """``NuScenesMap.get_map_mask`` on the LiDAR-centred patch: heading of the LiDAR x axis as patch angle, centre
    moved by half a cell (the devkit puts pixel centres on integer multiples of the resolution); no flip."""
    from nuscenes.map_expansion.map_api import NuScenesMap
    res_x, res_y = (RANGE[3] - RANGE[0]) / canvas[1], (RANGE[4] - RANGE[1]) / canvas[0]
    yaw = np.arctan2(lidar2global[1, 0], lidar2global[0, 0])
    rotation = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    centre = lidar2global[:2, 3] + rotation @ np.array([0.5 * res_x, 0.5 * res_y])
    nusc_map = NuScenesMap(dataroot=map_root, map_name=location)
    patch_box = (centre[0], centre[1], RANGE[4] - RANGE[1], RANGE[3] - RANGE[0])
    return nusc_map.get_map_mask(patch_box, np.degrees(yaw), [layer], canvas)[0]


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return _toy_map(tmp_path_factory.mktemp('toy-map'))


def test_toy_map_exact_pixels(toy_root):
    # LiDAR at (100, 98) heading +x: divider y=100 -> LiDAR y=2 -> rows around (2+51.2)/0.512-0.5 = 103.4,
    # lane divider x=100 -> LiDAR x=0 -> columns around 99.5; crossing x in [10, 14] m -> columns 119..127
    gt = MapRasterizer(RANGE, (200, 200), line_thickness=2)(toy_root, LOCATION, _lidar2global(100, 98, 0.0))
    assert gt['labels'].tolist()[:3] == [0, 0, 1] and gt['labels'][-1] == 3 and set(gt['labels'][3:-1]) == {2}
    road_divider, lane_divider, crossing = gt['masks'][:3]
    assert set(np.flatnonzero(road_divider.any(1))) <= {102, 103, 104, 105}
    assert road_divider[:, 0].sum() >= 1 and road_divider[:, 199].sum() >= 1  # spans the whole canvas
    assert set(np.flatnonzero(lane_divider.any(0))) <= {98, 99, 100, 101}
    assert gt['bboxes'][2].tolist()[0] == pytest.approx(118, abs=1) and gt['bboxes'][2][2] == pytest.approx(128, abs=1)
    assert crossing[101, 122] == 0 and crossing[101, 118:121].any()  # an outline, not filled
    drivable = gt['masks'][-1]
    # road y in [-8, 12] m -> v = (y + 51.2) / 0.512 - 0.5 in [83.9, 122.9] -> rows 84..123 (vertices rounded,
    # edge pixels filled, as the devkit); lane x in [-5, 5] m -> u in [89.7, 109.3] -> columns 90..109
    assert drivable[84:124, 0].all() and not drivable[83, 0] and not drivable[124, 0]
    assert drivable[0, 90:110].all() and not drivable[0, 89] and not drivable[0, 110]
    for mask, box in zip(gt['masks'], gt['bboxes']):
        rows, cols = np.nonzero(mask)
        assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


@pytest.mark.parametrize('yaw', [0.0, 0.7, -2.3])
@pytest.mark.parametrize('canvas', [(200, 200), (50, 100)])
def test_toy_drivable_equals_devkit(toy_root, yaw, canvas):
    pose = _lidar2global(103.0, 97.0, yaw)
    ours = MapRasterizer(RANGE, canvas)(toy_root, LOCATION, pose)['masks'][-1]
    devkit = _devkit_mask(toy_root, LOCATION, pose, canvas)
    assert devkit.sum() > 0
    np.testing.assert_array_equal(ours, devkit)


def test_rotation_moves_map_with_the_lidar_frame(toy_root):
    # turning the LiDAR by +90 deg maps LiDAR (x, y) -> (y, -x): the east-west road becomes a column band
    rasterizer = MapRasterizer(RANGE, (100, 100))
    straight = rasterizer(toy_root, LOCATION, _lidar2global(100, 100, 0.0))['masks'][-1]
    turned = rasterizer(toy_root, LOCATION, _lidar2global(100, 100, np.pi / 2))['masks'][-1]
    # turned[i, j] at LiDAR (x_j, y_i) is the global point (100 - y_i, 100 + x_j) = straight at LiDAR (-y_i, x_j),
    # i.e. straight[j, 99 - i]; the outermost pixel ring is left out (clip edges round differently)
    assert turned[45:55, :].all() and not turned[:45, 0].any()
    np.testing.assert_array_equal(turned[1:-1, 1:-1], straight[:, ::-1].T[1:-1, 1:-1])


def test_unlabelled_frame_and_missing_map(toy_root, tmp_path):
    transform = LoadMapAnnotations(pc_range=RANGE, canvas_size=(50, 50))
    results = dict(location=LOCATION, data_root=toy_root, has_map_gt=False, ego2global=np.eye(4).tolist(),
                   lidar2ego=np.eye(4).tolist())
    out = transform(results)
    assert out['gt_map_labels'].shape == (0,) and out['gt_map_masks'].shape == (0, 50, 50)
    assert out['gt_map_bboxes'].shape == (0, 4)
    with pytest.raises(FileNotFoundError, match='map expansion'):
        load_location_geometry(str(tmp_path), LOCATION)


def test_bad_rasterizer_args():
    with pytest.raises(ValueError, match='pc_range'):
        MapRasterizer((0, 0, 0, -1, 1, 1))
    with pytest.raises(ValueError, match='line_thickness'):
        MapRasterizer(RANGE, (10, 10), line_thickness=0)


def _synthetic_poses(synthetic_infos, num):
    import mmengine
    frames = mmengine.load(synthetic_infos['train'])['data_list']
    picks = np.linspace(0, len(frames) - 1, num).astype(int)
    return [(frames[i]['location'], np.asarray(frames[i]['ego2global']) @ np.asarray(frames[i]['lidar2ego']))
            for i in picks]


def test_synthetic_drivable_matches_devkit(synthetic_root, synthetic_infos):
    rasterizer = MapRasterizer(RANGE, (200, 200))
    for location, pose in _synthetic_poses(synthetic_infos, 6):
        ours = rasterizer(str(synthetic_root), location, pose)['masks'][-1].astype(bool)
        devkit = _devkit_mask(str(synthetic_root), location, pose, (200, 200)).astype(bool)
        iou = (ours & devkit).sum() / max((ours | devkit).sum(), 1)
        assert devkit.sum() > 0 and iou > 0.98, (location, iou)


def test_synthetic_things_present_where_the_map_has_them(synthetic_root, synthetic_infos):
    import shapely
    from nuscenes.map_expansion.map_api import NuScenesMap
    rasterizer = MapRasterizer(RANGE, (200, 200))
    counts = np.zeros(3, dtype=int)
    for location, pose in _synthetic_poses(synthetic_infos, 6):
        gt = rasterizer(str(synthetic_root), location, pose)
        nusc_map = NuScenesMap(dataroot=str(synthetic_root), map_name=location)
        patch = rasterizer._global_patch(pose)
        dividers = [nusc_map.extract_line(r['line_token']) for r in nusc_map.road_divider + nusc_map.lane_divider]
        crossings = [nusc_map.extract_polygon(r['polygon_token']) for r in nusc_map.ped_crossing]
        inside = [any(shapely.intersects(g, patch.buffer(-1.0)) for g in geoms) for geoms in (dividers, crossings)]
        for label, present in enumerate(inside):
            assert (gt['labels'] == label).any() == present, (location, label)
        counts += np.bincount(gt['labels'][:-1], minlength=3)[:3]
        assert gt['labels'][-1] == 3 and gt['masks'][:-1].reshape(len(gt['labels']) - 1, -1).any(1).all()
    assert (counts > 0).all(), counts
