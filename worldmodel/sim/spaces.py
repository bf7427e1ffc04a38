"""Observation and action spaces of the driving environments, and the checks that give actions clear errors.

Actions come in two modes (the env's `action_mode`):
- `control`: float32 (2,) = (target speed in m/s in [0, 40], steering in [-1, 1]); steering is the
  steering-wheel angle as a fraction of its full lock (+1 = full left, MAX_STEERING_WHEEL_RAD = 9 rad,
  i.e. 0.6 rad at the road wheels of the procedural ego), held for the whole step;
- `trajectory`: float32 (4, 2) = waypoints (x forward, y left) in metres in the ego frame of the current
  frame, at DEFAULT_ACTION_TIMES (0.5, 1.0, 1.5, 2.0 s) ahead; the ego tracks them (pure pursuit).
Observations: the latest frame of every camera (uint8 (V, H, W, 3)), speed (m/s), yaw rate (rad/s, + left)
and pose (x, y, yaw) integrated from the commanded actions in the frame of the ego at reset.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from gymnasium import spaces

from worldmodel.data.actions import DEFAULT_ACTION_TIMES
from worldmodel.data.synthetic import EgoVehicle

ACTION_MODES = ("control", "trajectory")
MAX_SPEED_MPS = 40.0
_EGO = EgoVehicle()
MAX_STEERING_WHEEL_RAD = _EGO.max_wheel_angle * _EGO.steering_ratio  # full lock, 9 rad
MAX_YAW_RATE = MAX_SPEED_MPS * math.tan(_EGO.max_wheel_angle) / _EGO.wheelbase  # rad/s at full lock and top speed
TRAJECTORY_X_M = (-10.0, MAX_SPEED_MPS * max(DEFAULT_ACTION_TIMES))  # (-10, 80)
TRAJECTORY_Y_M = (-TRAJECTORY_X_M[1], TRAJECTORY_X_M[1])
_YAW_BOUND = np.float32(np.pi)


def pose_bound_m(horizon_s: float) -> float:
    """Largest |x| or |y| the ego can reach in `horizon_s` (top speed all the way), plus a margin."""
    return float(MAX_SPEED_MPS * horizon_s + 100.0)


def observation_space(num_views: int, size: tuple[int, int], horizon_s: float) -> spaces.Dict:
    """Dict of frames uint8 (V, H, W, 3), speed (1,), yaw_rate (1,), pose (3,) float32, all bounded."""
    reach = pose_bound_m(horizon_s)
    h, w = size
    return spaces.Dict({
        "frames": spaces.Box(0, 255, (num_views, h, w, 3), np.uint8),
        "speed": spaces.Box(0.0, MAX_SPEED_MPS, (1,), np.float32),
        "yaw_rate": spaces.Box(-MAX_YAW_RATE, MAX_YAW_RATE, (1,), np.float32),
        "pose": spaces.Box(np.array([-reach, -reach, -_YAW_BOUND], np.float32),
                           np.array([reach, reach, _YAW_BOUND], np.float32), (3,), np.float32),
    })


def action_space(mode: str) -> spaces.Box:
    """Box of one action in `mode` (see the module docstring)."""
    if mode == "control":
        return spaces.Box(np.array([0.0, -1.0], np.float32), np.array([MAX_SPEED_MPS, 1.0], np.float32), (2,),
                          np.float32)
    if mode == "trajectory":
        n = len(DEFAULT_ACTION_TIMES)
        low = np.tile(np.array([TRAJECTORY_X_M[0], TRAJECTORY_Y_M[0]], np.float32), (n, 1))
        high = np.tile(np.array([TRAJECTORY_X_M[1], TRAJECTORY_Y_M[1]], np.float32), (n, 1))
        return spaces.Box(low, high, (n, 2), np.float32)
    raise ValueError(f"action_mode must be one of {', '.join(ACTION_MODES)}, got {mode!r}")


def _field_names(mode: str) -> list[str]:
    if mode == "control":
        return ["target_speed", "steering"]
    return [f"waypoint[{i}].{axis}" for i in range(len(DEFAULT_ACTION_TIMES)) for axis in ("x", "y")]


def _describe(mode: str) -> str:
    if mode == "control":
        return f"(target_speed m/s in [0, {MAX_SPEED_MPS:g}], steering in [-1, 1])"
    return f"{len(DEFAULT_ACTION_TIMES)} waypoints (x, y) in metres at {DEFAULT_ACTION_TIMES} s ahead"


def validate_action(action: object, mode: str, space: spaces.Box) -> np.ndarray:
    """Any array-like action -> float32 array of `space`'s shape; ValueError naming the field, value and range."""
    if isinstance(action, Mapping) and mode == "control":
        missing = [k for k in ("target_speed", "steering") if k not in action]
        if missing:
            raise ValueError(f"control action dict needs keys target_speed and steering; missing {missing}")
        action = [action["target_speed"], action["steering"]]
    try:
        array = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{mode} action must be numeric {_describe(mode)}, got {action!r} ({err})") from None
    if array.shape != space.shape:
        raise ValueError(f"{mode} action has shape {array.shape}, expected {space.shape}: {_describe(mode)}")
    names = _field_names(mode)
    for name, value, low, high in zip(names, array.ravel(), space.low.ravel(), space.high.ravel()):
        if not math.isfinite(value):
            raise ValueError(f"{mode} action field {name} is {value}; it must be a finite number in [{low:g}, {high:g}]")
        if not low <= value <= high:
            raise ValueError(f"{mode} action field {name} = {value:g} is outside its range [{low:g}, {high:g}]")
    return array.astype(np.float32)


def wrap_angle(angle: float) -> float:
    """Angle in radians -> [-pi, pi]."""
    return float((angle + np.pi) % (2 * np.pi) - np.pi)
