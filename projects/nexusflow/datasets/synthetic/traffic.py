"""Traffic of one scene: the ego car, vehicles that follow lanes and pedestrians on sidewalks and crossings.

Every mover follows a fixed path (a lane route through the lane graph for vehicles, a sidewalk or a zebra crossing
for pedestrians) with a smooth speed profile ``s(t) = s0 + v t + A (sin(w t + phi) - sin(phi))`` (|A w| <= 15 % of
v). Paths come from the map, so vehicles keep to the correct side of the road (right in Boston, left in Singapore)
and turn only through lane connectors. Each candidate is anchored at the ego's position at a random keyframe (it is
placed near the ego at that time, and vehicle routes are extended backwards through the lane graph), so the ego is
surrounded by traffic throughout the scene. Candidates are accepted greedily, in a seeded order, only if their
footprint never overlaps the ego or an accepted mover (oriented-rectangle test every 0.25 s).
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .geometry import Polyline, rectangles_overlap
from .layers import RoadNetwork
from .road_network import sample_lane
from .styles import PEDESTRIAN_CLASS, VEHICLE_CLASSES, ObjectClass

KEYFRAME_PERIOD = 0.5      # seconds between keyframes (2 Hz)
TIME_PAD = 1.0             # seconds of ego motion simulated before the first and after the last keyframe
CHECK_STEP = 0.25          # seconds between collision checks
VEHICLE_SPAWN_RADIUS = 35.0      # metres from the anchor to the spawn lane
PEDESTRIAN_SPAWN_RADIUS = 30.0
EGO_SPEED = (5.0, 10.0)
EGO_CLEARANCE = 8.0        # metres kept free in front of and behind the ego
HEAVY_HEIGHT = 2.5         # metres; taller movers (trucks, buses) count as heavy
HEAVY_EGO_CLEARANCE = 15.0
HEAVY_SIDE_MARGIN = 1.5    # metres each side; keeps heavy vehicles out of the ego's neighbouring lane alongside
EGO_SIZE_WLH = (1.73, 4.08, 1.56)   # Renault Zoe, the nuScenes car
TURN_WEIGHTS = {'straight': 3.0, 'left': 1.0, 'right': 1.0}
DENSITY_DURATION = 20.0    # seconds; a scene this long gets twice the movers of a very short one


def profile_distance(t: np.ndarray, speed: float, amp: float = 0.0, omega: float = 0.0,
                     phase: float = 0.0) -> np.ndarray:
    """Distance (m) covered from time 0 to times ``t`` (s) with speed ``v + A w cos(w t + phi)``."""
    t = np.asarray(t, dtype=np.float64)
    return speed * t + amp * (np.sin(omega * t + phase) - math.sin(phase))


@dataclass
class Mover:
    """Anything that moves along a path: the ego car, a vehicle or a pedestrian (global frame, metres, seconds)."""
    name: str
    category: Optional[ObjectClass]    # None for the ego
    size_wlh: Tuple[float, float, float]
    colour: Tuple[int, int, int]
    path: Polyline
    s0: float
    speed: float
    amp: float = 0.0
    omega: float = 0.0
    phase: float = 0.0

    def distance(self, t: np.ndarray) -> np.ndarray:
        """Arc length along the path at times ``t`` (s from the first keyframe), metres."""
        return self.s0 + profile_distance(t, self.speed, self.amp, self.omega, self.phase)

    def velocity(self, t: np.ndarray) -> np.ndarray:
        """Speed along the path ``ds/dt`` (m/s) at times ``t``."""
        t = np.asarray(t, dtype=np.float64)
        return self.speed + self.amp * self.omega * np.cos(self.omega * t + self.phase)

    def acceleration(self, t: np.ndarray) -> np.ndarray:
        """Longitudinal acceleration ``d2s/dt2`` (m/s^2) at times ``t``."""
        t = np.asarray(t, dtype=np.float64)
        return -self.amp * self.omega ** 2 * np.sin(self.omega * t + self.phase)

    def poses(self, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Centre ``[T, 2]`` (global x, y in m) and heading ``[T]`` (rad, CCW from +x) at times ``t``."""
        return self.path.pose_at(self.distance(t))

    def rects(self, t: np.ndarray) -> np.ndarray:
        """Footprints ``[T, 5]`` rows (x, y, length, width, yaw) at times ``t``."""
        xy, yaw = self.poses(t)
        size = np.broadcast_to([self.size_wlh[1], self.size_wlh[0]], (len(yaw), 2))
        return np.concatenate([xy, size, yaw[:, None]], axis=1)


@dataclass
class ScenePlan:
    """The ego and the movers of one scene; ``times`` are keyframe times (s) from the first keyframe."""
    ego: Mover
    movers: List[Mover]
    times: np.ndarray
    description: str


class RouteBuilder:
    """Lane routes through the lane graph of one city, with cached lane samples; reuse one per city."""

    def __init__(self, net: RoadNetwork):
        self.net = net
        self._samples: Dict[int, np.ndarray] = {}
        self.road_lanes = net.road_lanes
        self.lane_segments = np.array([[net.lanes[i].arcline['start_pose'][:2], net.lanes[i].arcline['end_pose'][:2]]
                                       for i in self.road_lanes])   # [L, 2, 2] centre-line end points

    def lane_length(self, lane: int) -> float:
        """Centre-line length of lane ``lane``, metres."""
        return float(sum(self.net.lanes[lane].arcline['segment_length']))

    def lane_samples(self, lane: int) -> np.ndarray:
        """Poses ``[N, 3]`` every 0.5 m along lane ``lane`` (cached)."""
        if lane not in self._samples:
            self._samples[lane] = sample_lane(self.net.lanes[lane], 0.5)
        return self._samples[lane]

    def route(self, start_lane: int, length: float, rng: np.random.Generator,
              prefix: Sequence[int] = ()) -> Tuple[Polyline, List[Tuple[int, float]]]:
        """A path of at least ``length`` metres (if the graph allows) from the start of ``start_lane``.

        Args:
            prefix: lanes to follow after ``start_lane`` before choosing successors at random (weighted by turn).

        Returns:
            (Polyline, list of (lane index, arc length at which the route enters it)).
        """
        chunks, lanes, total, lane = [], [], 0.0, start_lane
        while True:
            poses = self.lane_samples(lane)
            chunks.append(poses if not chunks else poses[1:])
            lanes.append((lane, total))
            total += self.lane_length(lane)
            successors = self.net.lanes[lane].successors
            if len(lanes) <= len(prefix):
                lane = prefix[len(lanes) - 1]
                continue
            if total >= length or not successors:
                break
            weights = np.array([TURN_WEIGHTS.get(self.net.lanes[s].turn, 1.0) for s in successors])
            lane = int(successors[rng.choice(len(successors), p=weights / weights.sum())])
        poses = np.concatenate(chunks, axis=0)
        return Polyline(poses[:, :2], yaws=poses[:, 2]), lanes

    def route_through(self, lane: int, offset: float, back: float, ahead: float,
                      rng: np.random.Generator) -> Tuple[Polyline, float]:
        """A path passing ``offset`` metres into ``lane`` with at least ``back`` metres before and ``ahead`` after
        (as far as the graph allows); returns (path, arc length of that point on the path)."""
        chain, before = [lane], offset
        while before < back and self.net.lanes[chain[0]].predecessors:
            preds = self.net.lanes[chain[0]].predecessors
            chain.insert(0, int(preds[rng.integers(len(preds))]))
            before += self.lane_length(chain[0])
        path, _ = self.route(chain[0], before + ahead, rng, prefix=chain[1:])
        return path, before


def _segment_distance(points: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Distance ``[S]`` from each segment ``seg`` ``[S, 2, 2]`` to the nearest of ``points`` ``[P, 2]``."""
    a, b = seg[:, None, 0], seg[:, None, 1]
    ab = b - a
    t = np.clip(((points[None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0.0, 1.0)
    return np.linalg.norm(a + t[..., None] * ab - points[None], axis=-1).min(axis=1)


def _profile(rng: np.random.Generator, speed: float) -> Dict[str, float]:
    """Speed profile kwargs of a :class:`Mover` with mean ``speed`` (m/s); standing still when ``speed`` is 0."""
    if speed <= 0.0:
        return {'speed': 0.0}
    omega = rng.uniform(0.2, 0.6)
    return {'speed': speed, 'omega': omega, 'amp': rng.uniform(0.0, 0.15) * speed / omega,
            'phase': rng.uniform(0.0, 2.0 * math.pi)}


def _travel(profile: Dict[str, float], t: float) -> float:
    """Distance (m) covered from time 0 to ``t`` by a mover with this speed profile."""
    return float(profile_distance(np.array([t]), **profile)[0])


def _max_travel(profile: Dict[str, float], duration: float) -> float:
    """Upper bound of the distance (m) covered in any ``duration`` seconds."""
    return profile['speed'] * duration + 2.0 * profile.get('amp', 0.0)


def _size_and_colour(cls: ObjectClass, rng: np.random.Generator):
    """Jittered (w, l, h) in metres and an RGB colour from the class palette."""
    size = tuple(float(v * (1.0 + rng.uniform(-cls.size_jitter, cls.size_jitter))) for v in cls.size_wlh)
    base = np.asarray(cls.colours[rng.integers(len(cls.colours))], dtype=np.int64)
    colour = tuple(int(v) for v in np.clip(base + rng.integers(-14, 15, size=3), 0, 255))
    return size, colour


def plan_ego(routes: RouteBuilder, start_lane: int, duration: float,
             rng: np.random.Generator) -> Tuple[Mover, str]:
    """The ego car on ``start_lane`` (5-10 m/s, a lane route long enough for ``duration`` s plus padding) and a
    short description of its manoeuvre ('straight drive', 'left turn', ...)."""
    profile = _profile(rng, rng.uniform(*EGO_SPEED))
    lane_len = routes.lane_length(start_lane)
    reach = _max_travel(profile, TIME_PAD)      # the ego is already on the route at t = -TIME_PAD
    s0 = rng.uniform(max(reach, 0.1 * lane_len), max(reach, 0.6 * lane_len))
    path, lanes = routes.route(start_lane, s0 + _max_travel(profile, duration + TIME_PAD) + 10.0, rng)
    ego = Mover('ego', None, EGO_SIZE_WLH, (0, 0, 0), path, s0=s0, **profile)
    first, last = ego.distance(np.array([0.0, duration]))
    turns = sorted({routes.net.lanes[i].turn for i, start in lanes
                    if first <= start <= last and routes.net.lanes[i].turn not in ('', 'straight')})
    return ego, (f"{' and '.join(turns)} turn" if turns else 'straight drive')


def _vehicle_candidate(routes: RouteBuilder, anchor: Tuple[float, np.ndarray], duration: float,
                       rng: np.random.Generator, name: str, weights: Sequence[float]) -> Optional[Mover]:
    """A vehicle of a class drawn by ``weights`` (of ``VEHICLE_CLASSES``) on a lane near ``anchor`` = (time, ego
    position) at that time; None if no lane is near."""
    t_anchor, point = anchor
    lanes = np.nonzero(_segment_distance(point[None], routes.lane_segments) < VEHICLE_SPAWN_RADIUS)[0]
    if not len(lanes):
        return None
    k = int(lanes[rng.integers(len(lanes))])
    a, b = routes.lane_segments[k]
    length = float(np.linalg.norm(b - a))
    offset = float(np.clip(np.dot(point - a, (b - a) / length) + rng.uniform(-30.0, 30.0), 0.0, length))
    cls = VEHICLE_CLASSES[rng.choice(len(VEHICLE_CLASSES), p=np.array(weights) / sum(weights))][0]
    profile = _profile(rng, rng.uniform(*cls.speed))
    before = _travel(profile, t_anchor)
    path, s_anchor = routes.route_through(routes.road_lanes[k], offset, before + 5.0,
                                          _max_travel(profile, duration) + 10.0, rng)
    size, colour = _size_and_colour(cls, rng)
    return Mover(name, cls, size, colour, path, s0=s_anchor - before, **profile)


def _pedestrian_path(net: RoadNetwork, point: np.ndarray, rng: np.random.Generator):
    """(path points ``[K, 2]``, arc length near ``point``) on a zebra crossing or sidewalk near ``point``, or None."""
    cross_d = np.linalg.norm(np.array([c['centre'] for c in net.crossings]) - point, axis=1)
    walk_d = _segment_distance(point[None], np.array([w['centreline'] for w in net.walkways]))
    crossings = np.nonzero(cross_d < PEDESTRIAN_SPAWN_RADIUS)[0]
    walkways = np.nonzero(walk_d < PEDESTRIAN_SPAWN_RADIUS)[0]
    if len(crossings) and (rng.random() < 0.35 or not len(walkways)):
        c = net.crossings[int(crossings[rng.integers(len(crossings))])]
        reach = c['across'] * (c['length'] / 2.0 + net.style.sidewalk_width / 2.0)
        side = 1.0 if rng.random() < 0.5 else -1.0
        a, b = c['centre'] - side * reach, c['centre'] + side * reach
        return np.stack([a + c['outward'] * 20.0, a, b, b + c['outward'] * 30.0]), rng.uniform(16.0, 22.0)
    if not len(walkways):
        return None
    w = net.walkways[int(walkways[rng.integers(len(walkways))])]
    pts = w['centreline'] if rng.random() < 0.5 else w['centreline'][::-1]
    axis = (pts[1] - pts[0]) / np.linalg.norm(pts[1] - pts[0])
    return pts, float(np.dot(point - pts[0], axis) + rng.uniform(-15.0, 15.0))


def _pedestrian_candidate(net: RoadNetwork, anchor: Tuple[float, np.ndarray], rng: np.random.Generator,
                          name: str) -> Optional[Mover]:
    """A pedestrian walking (or, 15 % of them, standing) near ``anchor`` = (time, ego position) at that time."""
    found = _pedestrian_path(net, anchor[1], rng)
    if found is None:
        return None
    pts, s_anchor = found
    profile = _profile(rng, 0.0 if rng.random() < 0.15 else rng.uniform(*PEDESTRIAN_CLASS.speed))
    size, colour = _size_and_colour(PEDESTRIAN_CLASS, rng)
    return Mover(name, PEDESTRIAN_CLASS, size, colour, Polyline(pts),
                 s0=s_anchor - _travel(profile, anchor[0]), **profile)


def _accept(candidate: Mover, accepted: List[Mover], check_times: np.ndarray, margin: float) -> bool:
    """True if the candidate's footprint keeps ``margin`` metres from every accepted mover at every check time, and
    clear of the ego (``accepted[0]``): EGO_CLEARANCE metres ahead and behind, more for trucks and buses, which
    also may not drive alongside, so that no camera is filled by a box at arm's length."""
    cand = candidate.rects(check_times)
    ego = accepted[0].rects(check_times)
    heavy = candidate.size_wlh[2] > HEAVY_HEIGHT
    ego[:, 2] += 2.0 * (HEAVY_EGO_CLEARANCE if heavy else EGO_CLEARANCE)
    if rectangles_overlap(cand, ego, HEAVY_SIDE_MARGIN if heavy else margin).any():
        return False
    others = np.stack([m.rects(check_times) for m in accepted[1:]]) if len(accepted) > 1 else np.zeros((0, 1, 5))
    return not rectangles_overlap(cand[None], others, margin).any()


def _spawn(make, target: int, accepted: List[Mover], check_times: np.ndarray, margin: float) -> int:
    """Draw candidates from ``make(k)`` until ``target`` are accepted or 6x as many were tried; returns count."""
    count = 0
    for k in range(6 * target):
        candidate = make(k)
        if candidate is not None and _accept(candidate, accepted, check_times, margin):
            accepted.append(candidate)
            count += 1
            if count == target:
                break
    return count


def plan_scene(routes: RouteBuilder, start_lane: int, num_samples: int, rng: np.random.Generator,
               vehicle_weights: Sequence[float]) -> ScenePlan:
    """Plan the ego drive from ``start_lane`` and the traffic around it for ``num_samples`` keyframes 0.5 s apart.

    Args:
        routes (RouteBuilder): route builder of the city.
        start_lane (int): index (in ``routes.net.lanes``) of the road lane the ego starts on.
        num_samples (int): number of keyframes (>= 2).
        rng (np.random.Generator): the scene's random generator.
        vehicle_weights (Sequence[float]): spawn weights of ``VEHICLE_CLASSES`` (``styles.vehicle_weights``).

    Returns:
        ScenePlan: ego, accepted movers (vehicles first, then pedestrians), keyframe times and a description.
    """
    times = np.arange(num_samples) * KEYFRAME_PERIOD
    duration = float(times[-1])
    ego, manoeuvre = plan_ego(routes, start_lane, duration, rng)
    check_times = np.arange(0.0, duration + 1e-9, CHECK_STEP)
    ego_xy = ego.poses(times)[0]

    def anchor():
        k = int(rng.integers(len(times)))
        return float(times[k]), ego_xy[k]

    accepted: List[Mover] = [ego]
    scale = 1.0 + duration / DENSITY_DURATION    # longer scenes meet more traffic
    n_veh = _spawn(lambda k: _vehicle_candidate(routes, anchor(), duration, rng, f'vehicle{k}', vehicle_weights),
                   int(rng.integers(10, 17) * scale), accepted, check_times, margin=0.4)
    n_ped = _spawn(lambda k: _pedestrian_candidate(routes.net, anchor(), rng, f'pedestrian{k}'),
                   int(rng.integers(8, 15) * scale), accepted, check_times, margin=0.15)
    description = (f"{manoeuvre} at {ego.speed:.1f} m/s, {n_veh} vehicles, {n_ped} pedestrians, "
                   f"{', '.join(routes.net.style.tags)}")
    return ScenePlan(ego=ego, movers=accepted[1:], times=times, description=description)
