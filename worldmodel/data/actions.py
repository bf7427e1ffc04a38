"""The Vista action interface shared by every reader: named fields, derivation from ego states, packing.

Conventions (docs/CONTRACTS.md): ego frame x forward, y left, z up, metres and seconds; the origin is
the ego pose at the clip's action origin frame; waypoints, speeds and steering-wheel angles
are taken at `action_times` after it. A field that cannot be measured is marked invalid and
left at zero, never invented.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import torch

ACTION_FIELDS = ("command", "trajectory", "speed", "angle", "goal")
ACTION_DIMS = {"command": 1, "trajectory": 8, "speed": 4, "angle": 4, "goal": 2}
NUM_ACTION_SCALARS = sum(ACTION_DIMS.values())
DEFAULT_ACTION_TIMES = (0.5, 1.0, 1.5, 2.0)

# Interpolation may ask for a time a rounding error outside the recorded span.
_TIME_EPS = 1e-6


class Command(IntEnum):
    """High-level driving command, one enum for all datasets."""

    STRAIGHT = 0
    LEFT = 1
    RIGHT = 2
    LANE_CHANGE_LEFT = 3
    LANE_CHANGE_RIGHT = 4
    STOP = 5
    U_TURN = 6
    OTHER = 7


@dataclass(frozen=True)
class CommandThresholds:
    """Thresholds of the rule that turns a future trajectory into a `Command`."""

    stop_speed_mps: float = 0.5  # final speed below this: STOP
    stop_distance_m: float = 1.0  # or the whole path shorter than this: STOP
    turn_heading_rad: float = 0.25  # |final heading| above this (~14 deg): LEFT / RIGHT
    u_turn_heading_rad: float = 2.6  # |final heading| above this (~150 deg): U_TURN
    lane_change_lateral_m: float = 0.8  # lateral offset not explained by the heading: lane change


def field_slice(name: str) -> slice:
    """The columns of field `name` in a packed action vector (`pack_actions`: ACTION_FIELDS order)."""
    start = sum(ACTION_DIMS[f] for f in ACTION_FIELDS[: ACTION_FIELDS.index(name)])
    return slice(start, start + ACTION_DIMS[name])


def relative_pose(origin: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Planar poses (..., 3) x, y, yaw -> `pose` expressed in the ego frame of `origin` (..., 3)."""
    dx, dy = pose[..., 0] - origin[..., 0], pose[..., 1] - origin[..., 1]
    c, s = np.cos(origin[..., 2]), np.sin(origin[..., 2])
    return np.stack([c * dx + s * dy, -s * dx + c * dy, pose[..., 2] - origin[..., 2]], axis=-1)


def _final_heading(trajectory: np.ndarray) -> float:
    """Heading of the path at its end, from the last segment long enough to carry a direction."""
    points = np.concatenate([np.zeros((1, 2)), trajectory], axis=0)
    for i in range(len(points) - 1, 0, -1):
        seg = points[i] - points[i - 1]
        if np.hypot(*seg) > 0.2:
            return float(np.arctan2(seg[1], seg[0]))
    return 0.0


def _final_speed(trajectory: np.ndarray, speed: np.ndarray | None, start_speed: float | None,
                 action_times: Sequence[float]) -> float:
    """Final speed: the measured one, else estimated from waypoint spacing.

    Under constant acceleration an interval's mean speed is the mean of its end speeds, so
    with a known start speed the end speeds follow interval by interval; without it the last
    interval's mean speed is used.
    """
    if speed is not None:
        return float(speed[-1])
    times = np.concatenate([[0.0], np.asarray(action_times, dtype=np.float64)])
    points = np.concatenate([np.zeros((1, 2)), trajectory], axis=0)
    mean = np.hypot(*np.diff(points, axis=0).T) / np.diff(times)
    if start_speed is None:
        return float(mean[-1])
    v = float(start_speed)
    for m in mean:
        v = max(2.0 * m - v, 0.0)
    return v


def derive_command(trajectory: np.ndarray, speed: np.ndarray | None = None,
                   thresholds: CommandThresholds = CommandThresholds(), start_speed: float | None = None,
                   action_times: Sequence[float] = DEFAULT_ACTION_TIMES) -> Command:
    """Command from future waypoints (n, 2) in the ego frame, checked in this order:

    1. STOP when the final speed is below `stop_speed_mps` or the path is shorter than `stop_distance_m`;
    2. OTHER when the first waypoint lies behind the start (reversing);
    3. U_TURN when the final heading (direction of the last segment) exceeds `u_turn_heading_rad`;
    4. LEFT / RIGHT when it exceeds `turn_heading_rad` (positive = left);
    5. LANE_CHANGE_LEFT / _RIGHT when the final lateral offset minus the offset a constant-curvature
       arc with that heading would have (heading * x / 2) exceeds `lane_change_lateral_m`;
    6. else STRAIGHT.
    """
    trajectory = np.asarray(trajectory, dtype=np.float64)
    if not np.all(np.isfinite(trajectory)):
        return Command.OTHER
    path = np.concatenate([np.zeros((1, 2)), trajectory], axis=0)
    length = float(np.hypot(*np.diff(path, axis=0).T).sum())
    final_speed = _final_speed(trajectory, None if speed is None else np.asarray(speed), start_speed,
                               action_times)
    if final_speed < thresholds.stop_speed_mps or length < thresholds.stop_distance_m:
        return Command.STOP
    if trajectory[0, 0] < -0.2:
        return Command.OTHER
    heading = _final_heading(trajectory)
    if abs(heading) > thresholds.u_turn_heading_rad:
        return Command.U_TURN
    if abs(heading) > thresholds.turn_heading_rad:
        return Command.LEFT if heading > 0 else Command.RIGHT
    x_end, y_end = trajectory[-1]
    residual = y_end - 0.5 * heading * x_end
    if abs(residual) > thresholds.lane_change_lateral_m:
        return Command.LANE_CHANGE_LEFT if residual > 0 else Command.LANE_CHANGE_RIGHT
    return Command.STRAIGHT


def empty_actions(num_times: int = len(DEFAULT_ACTION_TIMES)) -> dict[str, Any]:
    """All-zero actions with every field invalid (datasets without ego motion, e.g. OpenDV)."""
    return {
        "command": np.int64(Command.STRAIGHT),
        "trajectory": np.zeros((num_times, 2), np.float32),
        "speed": np.zeros(num_times, np.float32),
        "angle": np.zeros(num_times, np.float32),
        "goal": np.zeros(2, np.float32),
        "valid": {name: False for name in ACTION_FIELDS},
    }


def _project_goal(point_ego: np.ndarray, intrinsics: np.ndarray, camera_to_ego: np.ndarray,
                  image_size: tuple[int, int]) -> np.ndarray | None:
    """Ground point (x, y) in the ego frame -> (u, v) in [0, 1], or None when not visible."""
    ego_to_camera = np.linalg.inv(np.asarray(camera_to_ego, dtype=np.float64))
    p = ego_to_camera @ np.array([point_ego[0], point_ego[1], 0.0, 1.0])
    if p[2] <= 0.1:  # behind (or in the plane of) the camera
        return None
    uvw = np.asarray(intrinsics, dtype=np.float64) @ p[:3]
    h, w = image_size
    uv = np.array([uvw[0] / uvw[2] / w, uvw[1] / uvw[2] / h])
    if not np.all((uv >= 0.0) & (uv <= 1.0)):
        return None
    return uv


def actions_from_ego_states(timestamps: np.ndarray, positions: np.ndarray, yaws: np.ndarray,
                            speeds: np.ndarray | None, steering: np.ndarray | None, origin_time: float,
                            action_times: Sequence[float] = DEFAULT_ACTION_TIMES,
                            intrinsics: np.ndarray | None = None, camera_to_ego: np.ndarray | None = None,
                            image_size: tuple[int, int] | None = None,
                            thresholds: CommandThresholds = CommandThresholds()) -> dict[str, Any]:
    """Actions of CONTRACTS.md from sampled ego states.

    timestamps (n,) s increasing; positions (n, 2) world x, y; yaws (n,) rad; speeds (n,) m/s or
    None; steering (n,) steering-wheel angle (rad, positive left) or None. States are linearly
    interpolated (yaw unwrapped) at `origin_time` and `origin_time + action_times`. The goal is the
    last waypoint on the ground projected by the front camera (intrinsics (3, 3) for `image_size`
    (h, w), camera_to_ego (4, 4), OpenCV axes); without a camera it is invalid. A field whose times
    leave the recorded span is invalid.
    """
    times = np.asarray(timestamps, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    yaws = np.unwrap(np.asarray(yaws, dtype=np.float64))
    out = empty_actions(len(action_times))
    if len(times) == 0 or not (times[0] - _TIME_EPS <= origin_time <= times[-1] + _TIME_EPS):
        return out
    query = origin_time + np.asarray(action_times, dtype=np.float64)
    in_span = bool(np.all(query <= times[-1] + _TIME_EPS))
    if not in_span:
        return out  # every field is measured at the action times

    def interp(values: np.ndarray, t: np.ndarray | float) -> np.ndarray:
        return np.interp(t, times, values)

    origin = np.array([interp(positions[:, 0], origin_time), interp(positions[:, 1], origin_time),
                       interp(yaws, origin_time)])
    world = np.stack([interp(positions[:, 0], query), interp(positions[:, 1], query), np.zeros(len(query))], axis=-1)
    trajectory = relative_pose(origin, world)[:, :2]  # world -> ego frame at the origin
    out["trajectory"] = trajectory.astype(np.float32)
    out["valid"]["trajectory"] = True

    speed = None
    if speeds is not None:
        speed = interp(np.asarray(speeds, dtype=np.float64), query)
        out["speed"] = speed.astype(np.float32)
        out["valid"]["speed"] = True
    if steering is not None:
        out["angle"] = interp(np.asarray(steering, dtype=np.float64), query).astype(np.float32)
        out["valid"]["angle"] = True
    if intrinsics is not None and camera_to_ego is not None and image_size is not None:
        goal = _project_goal(trajectory[-1], intrinsics, camera_to_ego, image_size)
        if goal is not None:
            out["goal"] = goal.astype(np.float32)
            out["valid"]["goal"] = True
    start_speed = None if speeds is None else float(interp(np.asarray(speeds, dtype=np.float64), origin_time))
    out["command"] = np.int64(derive_command(trajectory, speed, thresholds, start_speed, action_times))
    out["valid"]["command"] = True
    return out


def pack_actions(actions: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Named actions -> values (b, 19) float32 in ACTION_FIELDS order and valid (b, 5) bool.

    Takes a collated batch (leading batch dim on every field, `valid` a dict of (b,) bools) or one
    clip's unbatched actions (numpy), which gives b = 1. Invalid fields are zeroed so that a
    reader's placeholder values never reach a model.
    """
    trajectory = actions["trajectory"]
    b = trajectory.shape[0] if trajectory.ndim == 3 else 1  # (b, 4, 2) batched, (4, 2) one clip
    columns, flags = [], []
    for name in ACTION_FIELDS:
        value = actions[name]
        value = value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value))
        value = value.reshape(b, -1).to(torch.float32)
        if value.shape[1] != ACTION_DIMS[name]:
            raise ValueError(f"action field {name!r} has {value.shape[1]} scalars, expected {ACTION_DIMS[name]}")
        flag = actions["valid"][name]
        flag = flag if torch.is_tensor(flag) else torch.as_tensor(np.asarray(flag))
        flags.append(flag.reshape(b).to(torch.bool))
        columns.append(value)
    valid = torch.stack(flags, dim=1)  # (b, 5)
    values = torch.cat(columns, dim=1)  # (b, 19)
    dims = torch.tensor([ACTION_DIMS[n] for n in ACTION_FIELDS])
    values = values * valid.repeat_interleave(dims, dim=1).to(values.dtype)
    return values, valid
