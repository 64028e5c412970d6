"""Intersection furniture of the synthetic city: lane connectors, zebra crossings and stop lines.

Lane connectors follow nuScenes' ``arcline_path_3`` form: a straight connector is ``LSL`` with lengths
``[0, L, 0]``; a 90 degree turn is a quarter circle of radius ``r = min(forward, lateral)`` preceded or followed by a
straight run (``LSL`` for left turns, ``RSR`` for right turns). Near-side turns (right in right-hand traffic, left
in left-hand traffic) go from the outermost lane to the outermost lane; far-side turns from the innermost lane to
the innermost lane; straight connectors keep the lane index; at a corner (two arms) every lane turns.
U-turns are not modelled.
"""
import math
from typing import Dict, Tuple

import numpy as np

from .geometry import make_arcline, sample_arcline, wrap_angle
from .layers import Lane, RoadNetwork, rectangle

CONNECTOR_RESOLUTION = 2.0   # metres between the sampled points of a connector outline
CROSSING_GAP = 1.5           # metres between the crossing street's edge and the zebra crossing
STOP_LINE_GAP = 1.0          # metres between the zebra crossing and the stop line
STOP_LINE_DEPTH = 0.5


def connector_arcline(entry: np.ndarray, exit_pose: np.ndarray) -> Dict:
    """Arcline from ``entry`` to ``exit_pose`` (each ``[x, y, yaw]``, global) for a straight run or a 90 deg turn."""
    delta = exit_pose[:2] - entry[:2]
    c, s = math.cos(entry[2]), math.sin(entry[2])
    forward, lateral = c * delta[0] + s * delta[1], -s * delta[0] + c * delta[1]
    turn = float(wrap_angle(exit_pose[2] - entry[2]))
    if abs(turn) < 1e-3:
        return make_arcline(entry, 'LSL', 1000.0, (0.0, forward, 0.0))
    radius = min(forward, abs(lateral))
    arc = radius * math.pi / 2.0
    lengths = (0.0, forward - radius, arc) if forward >= abs(lateral) else (arc, abs(lateral) - radius, 0.0)
    return make_arcline(entry, 'LSL' if turn > 0 else 'RSR', radius, lengths)


def connector_polygon(arcline: Dict, width: float) -> np.ndarray:
    """Counter-clockwise outline ``[N, 2]`` of a lane of ``width`` metres around an arcline centre line."""
    poses = sample_arcline(arcline, CONNECTOR_RESOLUTION)
    normal = np.stack([-np.sin(poses[:, 2]), np.cos(poses[:, 2])], axis=1)
    left, right = poses[:, :2] + normal * width / 2.0, poses[:, :2] - normal * width / 2.0
    return np.concatenate([right, left[::-1]], axis=0)


def _turn_pairs(turn: str, near_side: str, n_in: int, n_out: int, only_exit: bool):
    """(incoming lane index, outgoing lane index) pairs, innermost lane = 0; every lane turns at a corner."""
    if turn == 'straight' or only_exit:
        return [(k, min(k, n_out - 1)) for k in range(n_in)]
    if turn == near_side:
        return [(n_in - 1, n_out - 1)]
    return [(0, 0)]


def build_connectors(net: RoadNetwork, layout, ij: Tuple[int, int], arm_index: Dict) -> None:
    """Add the lane connectors of intersection ``ij`` to ``net.lanes`` and link them into the lane graph."""
    near_side = 'right' if net.style.right_hand_traffic else 'left'
    arms = layout.arms(*ij)
    for in_name, in_vec in arms:
        incoming = arm_index[(ij, tuple(in_vec))]['incoming']
        travel = -in_vec
        for out_name, out_vec in arms:
            if out_name == in_name:
                continue
            cross = travel[0] * out_vec[1] - travel[1] * out_vec[0]
            turn = 'straight' if abs(cross) < 0.5 else ('left' if cross > 0 else 'right')
            outgoing = arm_index[(ij, tuple(out_vec))]['outgoing']
            for k_in, k_out in _turn_pairs(turn, near_side, len(incoming), len(outgoing), len(arms) == 2):
                src, dst = net.lanes[incoming[k_in]], net.lanes[outgoing[k_out]]
                arc = connector_arcline(np.array(src.arcline['end_pose']), np.array(dst.arcline['start_pose']))
                idx = len(net.lanes)
                net.lanes.append(Lane(name=f'x{ij[0]}-{ij[1]}/{in_name}{k_in}>{out_name}{k_out}', arcline=arc,
                                      polygon=connector_polygon(arc, src.width), width=src.width,
                                      is_connector=True, turn=turn, predecessors=[incoming[k_in]],
                                      successors=[outgoing[k_out]]))
                src.successors.append(idx)
                dst.predecessors.append(idx)


def build_crossings(net: RoadNetwork, layout, ij: Tuple[int, int], inter_idx: int, arm_index: Dict) -> None:
    """Add a zebra crossing on every arm of intersection ``ij`` and a stop line in front of it for incoming traffic."""
    style, frame = net.style, net.frame
    centre = layout.node(*ij)
    incoming_side = 1.0 if style.right_hand_traffic else -1.0   # side of the arm's normal with incoming lanes
    for arm_name, out_vec in layout.arms(*ij):
        arm_hw, cross_hw = layout.half_widths(ij[0], ij[1], out_vec)
        normal = np.array([-out_vec[1], out_vec[0]])
        near = cross_hw + CROSSING_GAP
        mid = centre + out_vec * (near + style.crossing_depth / 2.0)
        net.crossings.append({'name': f'x{ij[0]}-{ij[1]}/{arm_name}/crossing',
                              'polygon': frame.points(rectangle(mid, out_vec, style.crossing_depth / 2.0, arm_hw)),
                              'centre': frame.points(mid), 'across': frame.vectors(normal),
                              'outward': frame.vectors(out_vec), 'length': 2.0 * arm_hw,
                              'depth': style.crossing_depth, 'segment': inter_idx})
        along = near + style.crossing_depth + STOP_LINE_GAP + STOP_LINE_DEPTH / 2.0
        stop_mid = centre + out_vec * along + normal * incoming_side * arm_hw / 2.0
        arm = arm_index[(ij, tuple(out_vec))]
        net.stop_lines.append({'name': f'x{ij[0]}-{ij[1]}/{arm_name}/stop',
                               'polygon': frame.points(rectangle(stop_mid, out_vec, STOP_LINE_DEPTH / 2.0,
                                                                 arm_hw / 2.0)),
                               'crossing': len(net.crossings) - 1, 'piece': arm['piece'],
                               'block': arm['incoming_block']})
