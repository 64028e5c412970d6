"""UniAD map-GT protocol: exact pixels on the hand-made map of test_map_gt for each difference from the default."""
import numpy as np
import pytest
from pyquaternion import Quaternion
from test_map_gt import LOCATION, RANGE, _toy_map

from projects.nexusflow.datasets.map_rasterizer import MapRasterizer
from projects.nexusflow.datasets.transforms import LoadMapAnnotations, PackTrackMapInputs
from projects.nexusflow.datasets.uniad_map_rasterizer import UniADMapRasterizer

# 200 x 200 over +-51.2 m: 0.512 m pixels. UniAD pixel of a local coordinate c (metres from the patch edge):
# int(c / 0.512), the vertex truncated.


def _pose(x, y, yaw_deg, z=0.0):
    pose = np.eye(4)
    pose[:3, :3] = Quaternion(axis=[0, 0, 1], degrees=yaw_deg).rotation_matrix
    pose[:3, 3] = [x, y, z]
    return pose


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    """The map of test_map_gt: east-west road y in [90, 110] with a road divider at y = 100, north-south lane
    x in [95, 105] with a lane divider at x = 100, crossing x in [110, 114] x y in [90, 110] (global, metres)."""
    return _toy_map(tmp_path_factory.mktemp('toy-map-uniad'))


def _gt(root, rasterizer, ego2global, lidar2ego):
    if isinstance(rasterizer, UniADMapRasterizer):
        return rasterizer(root, LOCATION, ego2global @ lidar2ego, ego2global)
    return rasterizer(root, LOCATION, ego2global @ lidar2ego)


def _masks(gt, label):
    return gt['masks'][gt['labels'] == label]


def test_centre_is_the_ego_origin(toy_root):
    # ego at (100, 98) heading north (+y); LiDAR 5.12 m ahead of it, axes as nuScenes (x right, y forward)
    ego2global, lidar2ego = _pose(100, 98, 90), _pose(5.12, 0, -90, z=1.8)
    uniad = _gt(toy_root, UniADMapRasterizer(RANGE, (200, 200), line_thickness=1), ego2global, lidar2ego)
    default = _gt(toy_root, MapRasterizer(RANGE, (200, 200), line_thickness=1), ego2global, lidar2ego)
    # the road divider y = 100 lies 2 m ahead of the ego: row int((2 + 51.2) / 0.512) = 103 in UniAD's canvas;
    # 3.12 m behind the LiDAR in the default one: row (-3.12 + 51.2) / 0.512 - 0.5 = 93.4
    uniad_rows = [set(np.flatnonzero(m.any(1))) for m in _masks(uniad, 0)]
    default_rows = [set(np.flatnonzero(m.any(1))) for m in _masks(default, 0)]
    assert {103} in uniad_rows and {93} in default_rows
    # the drivable mask is the default one in both protocols (LiDAR-centred, as UniAD's get_map_mask)
    np.testing.assert_array_equal(uniad['masks'][-1], default['masks'][-1])
    assert uniad['labels'][-1] == 3


@pytest.mark.parametrize('yaw, divider_axis, divider_index, lane_index', [
    (90, 'row', 103, 105),  # heading north: the east-west divider crosses the canvas, x = 100 is 3 m right
    (0, 'col', 96, None),  # heading east: the divider (2 m left of the ego) runs along the rows
])
def test_orientation_is_the_ego_heading_turned_to_the_canvas(toy_root, yaw, divider_axis, divider_index,
                                                             lane_index):
    # the LiDAR is mounted 10 degrees off: the default canvas turns with it, UniAD's follows the ego heading
    ego_x = 97 if yaw == 90 else 100
    ego2global, lidar2ego = _pose(ego_x, 98, yaw), _pose(0, 0, -80)
    uniad = _gt(toy_root, UniADMapRasterizer(RANGE, (200, 200), line_thickness=1), ego2global, lidar2ego)
    axis = 1 if divider_axis == 'row' else 0
    road_divider = _masks(uniad, 0)[0]
    assert set(np.flatnonzero(road_divider.any(axis))) == {divider_index}
    # spans the canvas but where the crossing edges' 7 px wide overlap filter clears it (UniAD's overlap_filter)
    assert road_divider.any(1 - axis).sum() >= 180
    default = _gt(toy_root, MapRasterizer(RANGE, (200, 200), line_thickness=1), ego2global, lidar2ego)
    assert len(set(np.flatnonzero(_masks(default, 0)[0].any(axis)))) > 20  # tilted by 10 degrees
    if lane_index is not None:
        # global x = 100 is 3 m to the right: column int((3 + 51.2) / 0.512) = 105 (104 would be a mirror image)
        lane_divider = _masks(uniad, 0)[1]
        assert set(np.flatnonzero(lane_divider.any(0))) == {lane_index}


def test_crossings_are_their_two_longest_edges_filtered_by_the_boundaries(toy_root):
    ego2global, lidar2ego = _pose(100, 98, 90), _pose(0, 0, -90)
    uniad = _gt(toy_root, UniADMapRasterizer(RANGE, (200, 200), line_thickness=1), ego2global, lidar2ego)
    crossings = _masks(uniad, 1)
    assert len(crossings) == 2
    # the 20 m edges x = 114 (drawn 90 -> 110) and x = 110 (110 -> 90), 10 and 14 m right of the ego: columns
    # int(61.2 / 0.512) = 119 and int(65.2 / 0.512) = 127; no short edge. Resampled every metre from the start
    # (end dropped): rows int((y - 98 + 51.2) / 0.512) for y = 90..109 -> 84..121 and y = 110..91 -> 86..123;
    # the road boundaries y = 90 (row 84) and y = 110 (row 123), drawn thickness 1 + 4 by UniAD's overlap filter
    # (cv2 covers +-3 px), clear the rows 81..87 and 120..126
    columns = sorted(int(np.flatnonzero(m.any(0))[0]) for m in crossings)
    assert columns == [119, 127]
    for mask in crossings:
        assert len(np.flatnonzero(mask.any(0))) == 1
        rows = np.flatnonzero(mask.any(1))
        assert rows.tolist() == list(range(88, 120))
    boundary_rows = {int(r) for m in _masks(uniad, 2) for r in np.flatnonzero(m[:, 150])}
    assert boundary_rows == {84, 123}
    default = _gt(toy_root, MapRasterizer(RANGE, (200, 200), line_thickness=1), ego2global, lidar2ego)
    outline = _masks(default, 1)
    assert len(outline) == 1 and len(np.flatnonzero(outline[0].any(0))) >= 8  # full outline: short edges too


def test_one_index_raster_per_class_later_instances_overwrite(toy_root):
    ego2global, lidar2ego = _pose(99.9, 98, 90), _pose(0, 0, -90)
    uniad = _gt(toy_root, UniADMapRasterizer(RANGE, (200, 200), line_thickness=1), ego2global, lidar2ego)
    road, lane = _masks(uniad, 0)[:2]
    # the lane divider (x = 100, 0.1 m right: column int(51.1 / 0.512) -> 199 - 99 = 100, drawn after the road
    # divider, row 103) owns the crossing pixel of the two
    assert set(np.flatnonzero(lane.any(0))) == {100}
    assert lane[103, 100] == 1 and road[103, 100] == 0 and road[103, 99] == 1 and road[103, 101] == 1
    default = _gt(toy_root, MapRasterizer(RANGE, (200, 200), line_thickness=1), ego2global, lidar2ego)
    assert (_masks(default, 0)[0] & _masks(default, 0)[1]).any()  # own masks: they overlap


def test_transform_packs_the_protocol_name(toy_root):
    results = dict(location=LOCATION, data_root=toy_root, ego2global=_pose(100, 98, 90).tolist(),
                   lidar2ego=_pose(0, 0, -90).tolist())
    out = LoadMapAnnotations(pc_range=RANGE, canvas_size=(50, 50), line_thickness=1, protocol='uniad')(dict(results))
    assert out['map_gt_protocol'] == 'uniad' and out['gt_map_labels'][-1] == 3
    assert LoadMapAnnotations(pc_range=RANGE, canvas_size=(50, 50))(dict(results))['map_gt_protocol'] == 'lidar'
    with pytest.raises(ValueError, match="protocol must be one of"):
        LoadMapAnnotations(protocol='hdmapnet')
    out.update(img=[np.zeros((4, 4, 3), np.uint8)])
    sample = PackTrackMapInputs(meta_keys=('location', ))(out)['data_samples']
    assert sample.metainfo['map_gt_protocol'] == 'uniad'


def test_synthetic_frames(synthetic_root, synthetic_infos):
    import mmengine
    frames = mmengine.load(synthetic_infos['val'])['data_list']
    counts = np.zeros(3, dtype=int)
    for info in frames[::3]:
        ego2global, lidar2ego = np.asarray(info['ego2global']), np.asarray(info['lidar2ego'])
        uniad = _gt(str(synthetic_root), UniADMapRasterizer(RANGE, (200, 200)), ego2global, lidar2ego)
        default = _gt(str(synthetic_root), MapRasterizer(RANGE, (200, 200)), ego2global, lidar2ego)
        np.testing.assert_array_equal(uniad['masks'][-1], default['masks'][-1])
        assert uniad['masks'][:-1].any(axis=(1, 2)).all()  # no empty instance
        counts += np.bincount(uniad['labels'][:-1], minlength=3)[:3]
    assert (counts > 0).all(), counts
