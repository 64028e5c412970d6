"""``generate_synthetic_nuscenes``: write a synthetic dataset in the exact nuScenes v1.0 on-disk format.

Layout written under ``out_dir``::

    <version>/{category,attribute,...,map}.json   the 13 tables (``nuscenes.NuScenes`` loads them unchanged)
    <version>/splits.json                          {'synth_train': [scene names], 'synth_val': [scene names]}
    samples/CAM_*/<logfile>__CAM_*__<utime>.jpg    rendered camera images; samples/LIDAR_TOP/... empty placeholders
    maps/expansion/<location>.json                 map expansion v1.3 (``NuScenesMap`` loads it unchanged)
    maps/basemap/<location>.png, maps/<hash>.png   basemap and semantic prior (1 m/px over the map canvas)
    can_bus/<scene>_pose.json                      CAN bus expansion pose messages (``NuScenesCanBus``)

Split names: the devkit (1.2.0) treats ``eval_set`` names of its predefined splits ('train', 'val', 'mini_val',
...) as the real nuScenes scene lists and checks the version suffix for them; only other names are read from
``<version>/splits.json``. The custom splits are therefore called ``synth_train`` and ``synth_val``
(``TrackingEval(..., eval_set='synth_val')``). About a quarter of each city's scenes (at least one) go to
``synth_val``, spread evenly over the city's scenes; with one scene per city that scene is in ``synth_val`` and
``synth_train`` has none of that city.

Deterministic: the same arguments give byte-identical files (seeded tokens, seeded generators per city / scene,
fixed JPEG quality). Memory stays bounded: images are streamed to disk scene by scene and the ground texture is
rasterised in windows around the ego.
"""
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from .annotations import scene_annotations
from .camera_model import CameraModel
from .can_bus import CAN_BLACKLIST, pose_messages, write_pose_messages
from .map_expansion import build_map_expansion
from .raster import build_paint_layers, map_bitmaps, mottle_table
from .renderer import SceneRenderer, noise_bank
from .rig import build_rig
from .road_network import build_road_network
from .styles import CITY_STYLES, vehicle_weights
from .tables import SCENES_PER_LOG, TableBuilder
from .tokens import TokenFactory
from .traffic import RouteBuilder, plan_scene

LOCATIONS = ('boston-seaport', 'singapore-onenorth')
SPLIT_NAMES = ('synth_train', 'synth_val')
VAL_FRACTION = 0.25
JPEG_QUALITY = 90
MIN_IMG_SIZE = (64, 36)
MAX_SCENE_ID = 9999          # scene names are 'scene-%04d'


def _check_args(out_dir, scenes_per_city, samples_per_scene, seed, img_size, version) -> Tuple[int, int]:
    """Raise TypeError / ValueError for bad arguments; returns img_size as (W, H) ints."""
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f'out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__}')
    for name, value, low in (('scenes_per_city', scenes_per_city, 1), ('samples_per_scene', samples_per_scene, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f'{name} must be an int, got {value!r}')
        if value < low:
            raise ValueError(f'{name} must be >= {low}, got {value}')
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if (not isinstance(img_size, (tuple, list)) or len(img_size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in img_size)):
        raise ValueError(f'img_size must be a (W, H) pair of ints, got {img_size!r}')
    if img_size[0] < MIN_IMG_SIZE[0] or img_size[1] < MIN_IMG_SIZE[1]:
        raise ValueError(f'img_size must be at least {MIN_IMG_SIZE} (W, H), got {tuple(img_size)}')
    if not isinstance(version, str) or not version.startswith('v1.0-') or len(version) == len('v1.0-') \
            or os.sep in version or (os.altsep and os.altsep in version):
        raise ValueError(f"version must look like 'v1.0-<name>' (e.g. 'v1.0-synth'), got {version!r}")
    available = MAX_SCENE_ID - len(CAN_BLACKLIST)
    if scenes_per_city * len(LOCATIONS) > available:
        raise ValueError(f'at most {available // len(LOCATIONS)} scenes per city fit the scene-XXXX names, '
                         f'got scenes_per_city={scenes_per_city}')
    return int(img_size[0]), int(img_size[1])


def scene_names(count: int) -> List[str]:
    """``count`` scene names 'scene-0001', ... skipping the ids the CAN bus API refuses."""
    ids = [i for i in range(1, MAX_SCENE_ID + 1) if i not in CAN_BLACKLIST][:count]
    return [f'scene-{i:04d}' for i in ids]


def val_indices(num_scenes: int) -> List[int]:
    """Indices of a city's scenes that go to ``synth_val``: about VAL_FRACTION of them, at least one, spread
    evenly; with two or more scenes at least one stays in ``synth_train``."""
    n_val = max(1, int(num_scenes * VAL_FRACTION + 0.5))
    if num_scenes >= 2:
        n_val = min(n_val, num_scenes - 1)
    return [int((i + 0.5) * num_scenes / n_val) for i in range(n_val)]


def _write_map_files(out_dir: str, net, layers, tokens: TokenFactory) -> None:
    """Map expansion JSON, basemap PNG and semantic-prior PNG of one city."""
    style = net.style
    os.makedirs(os.path.join(out_dir, 'maps', 'expansion'), exist_ok=True)
    os.makedirs(os.path.join(out_dir, 'maps', 'basemap'), exist_ok=True)
    with open(os.path.join(out_dir, 'maps', 'expansion', f'{style.location}.json'), 'w') as f:
        f.write(json.dumps(build_map_expansion(net, tokens)))
    basemap, prior = map_bitmaps(net, layers)
    cv2.imwrite(os.path.join(out_dir, 'maps', 'basemap', f'{style.location}.png'), basemap)
    cv2.imwrite(os.path.join(out_dir, 'maps', f'{style.map_hash}.png'), prior)


def _write_frames(out_dir: str, renderer: SceneRenderer, plan, frames: Sequence[Dict], channels: Sequence[str]):
    """Render and write every keyframe's camera JPEGs and lidar placeholder of one scene."""
    for k, frame in enumerate(frames):
        t = plan.times[k:k + 1]
        states = [(xy[0], float(yaw[0])) for xy, yaw in (m.poses(t) for m in plan.movers)]
        images = renderer.render(frame['ego_xy'], frame['ego_yaw'], plan.movers, states)
        for channel, image in zip(channels, images):
            ok, data = cv2.imencode('.jpg', image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise RuntimeError(f'JPEG encoding failed for {frame["files"][channel]}')
            _write_bytes(out_dir, frame['files'][channel], data.tobytes())
        _write_bytes(out_dir, frame['files']['LIDAR_TOP'], b'')


def _write_bytes(out_dir: str, rel_path: str, data: bytes) -> None:
    """Write ``data`` to ``out_dir/rel_path``, creating folders as needed."""
    path = os.path.join(out_dir, rel_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


class _Context:
    """What every scene needs: output folder, seed, vehicle mix, tables, rig, camera models, shared noise, mottle."""

    def __init__(self, out_dir: str, seed: int, img_size: Tuple[int, int], vehicle_weights: Sequence[float]):
        self.out_dir, self.seed, self.vehicle_weights = out_dir, seed, vehicle_weights
        self.tokens = TokenFactory(seed)
        rig = build_rig(img_size)
        self.tables = TableBuilder(self.tokens, rig, img_size)
        self.cameras = [CameraModel(s, img_size) for s in rig if s.modality == 'camera']
        self.noise = noise_bank(img_size, seed)
        self.mottle = mottle_table(seed)


def _generate_city(ctx: _Context, city: int, names: Sequence[str], samples_per_scene: int,
                   splits: Dict[str, List[str]]) -> None:
    """Map files and all scenes of one city."""
    style = CITY_STYLES[LOCATIONS[city]]
    net = build_road_network(style, ctx.seed)
    layers = build_paint_layers(net)
    _write_map_files(ctx.out_dir, net, layers, ctx.tokens)
    routes = RouteBuilder(net)
    start_lanes = np.random.default_rng([ctx.seed, city, 1]).permutation(routes.road_lanes)
    val = set(val_indices(len(names)))
    log = None
    for k, name in enumerate(names):
        if k % SCENES_PER_LOG == 0:
            log = ctx.tables.add_log(style, k // SCENES_PER_LOG)
        rng = np.random.default_rng([ctx.seed, city, 2, k])
        plan = plan_scene(routes, int(start_lanes[k % len(start_lanes)]), samples_per_scene, rng, ctx.vehicle_weights)
        frames = ctx.tables.add_scene(name, log, k % SCENES_PER_LOG, plan, scene_annotations(plan))
        renderer = SceneRenderer(ctx.cameras, net, layers, ctx.mottle, float(rng.uniform(0.9, 1.1)), ctx.noise, rng)
        _write_frames(ctx.out_dir, renderer, plan, frames, [cam.channel for cam in ctx.cameras])
        write_pose_messages(os.path.join(ctx.out_dir, 'can_bus', f'{name}_pose.json'),
                            pose_messages(plan.ego, frames[0]['utime'], float(plan.times[-1])))
        split = SPLIT_NAMES[1] if k in val else SPLIT_NAMES[0]
        splits[split].append(name)
        print_log(f'{style.location} {name} ({split}, {len(frames)} samples): {plan.description}', logger='current')


def generate_synthetic_nuscenes(out_dir: str, scenes_per_city: int = 2, samples_per_scene: int = 6, seed: int = 0,
                                img_size: tuple = (400, 225), version: str = 'v1.0-synth',
                                vehicle_mix: Optional[Dict[str, float]] = None) -> None:
    """Write a synthetic nuScenes dataset (boston-seaport and singapore-onenorth) into ``out_dir``.

    Args:
        out_dir (str): data root to write (created if missing; existing files of the same names are overwritten).
        scenes_per_city (int): scenes per city, >= 1.
        samples_per_scene (int): keyframes per scene (2 Hz), >= 2.
        seed (int): seed of everything (maps, traffic, lighting, noise, tokens), >= 0.
        img_size (tuple[int, int]): camera image size (W, H) in pixels, at least (64, 36).
        version (str): table folder name, 'v1.0-<name>'.
        vehicle_mix (dict[str, float], optional): relative spawn weights of the vehicle classes by detection name,
            e.g. ``{'car': 0.5, 'truck': 0.3, 'bus': 0.2}`` (default: car 0.8, truck 0.12, bus 0.08).

    Raises:
        TypeError / ValueError: for arguments outside the ranges above.
    """
    width, height = _check_args(out_dir, scenes_per_city, samples_per_scene, seed, img_size, version)
    weights = vehicle_weights(vehicle_mix)
    out_dir = os.fspath(out_dir)
    os.makedirs(os.path.join(out_dir, 'can_bus'), exist_ok=True)
    ctx = _Context(out_dir, int(seed), (width, height), weights)
    names = scene_names(scenes_per_city * len(LOCATIONS))
    splits = {name: [] for name in SPLIT_NAMES}
    for city in range(len(LOCATIONS)):
        _generate_city(ctx, city, names[city * scenes_per_city:(city + 1) * scenes_per_city], samples_per_scene,
                       splits)
    ctx.tables.add_maps([CITY_STYLES[loc] for loc in LOCATIONS])
    ctx.tables.write(os.path.join(out_dir, version))
    with open(os.path.join(out_dir, version, 'splits.json'), 'w') as f:
        f.write(json.dumps(splits, indent=1))
