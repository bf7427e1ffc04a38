"""Driving policies: the built-in lane keeper, and user policies loaded from "module:callable".

A policy is any callable `obs -> action` (obs and action as in sim/spaces.py). If it also has a
`reset(info)` method, the runner calls it with the info dict of every `env.reset`; that is how the
lane keeper receives the episode's route (`info["route"]`, in the frame of the observation poses).
"""
from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from worldmodel.data.actions import DEFAULT_ACTION_TIMES
from worldmodel.data.synthetic import EgoVehicle
from worldmodel.errors import UserInputError
from worldmodel.sim.rewards import Route
from worldmodel.sim.spaces import MAX_SPEED_MPS, MAX_STEERING_WHEEL_RAD

Policy = Callable[[Mapping[str, np.ndarray]], Any]
BUILTIN = ("lane_keeping",)


class PolicyError(UserInputError, ValueError):
    """A policy spec that names nothing importable or nothing callable (the command prints it as one line)."""


class LaneKeeping:
    """Pure pursuit on the episode's route at the route's scripted speed (or a fixed `speed`).

    It reads the ego pose and speed from the observation and the route from `reset(info)`: a map-based
    driver, so that the same actions can later drive the procedural simulator. `action_mode` "control"
    returns (target speed, steering); "trajectory" returns the route's next waypoints at DEFAULT_ACTION_TIMES.
    """

    def __init__(self, speed: float | None = None, lookahead_s: float = 0.7, min_lookahead_m: float = 5.0,
                 max_lookahead_m: float = 18.0, action_mode: str = "control") -> None:
        self.speed, self.lookahead_s = speed, lookahead_s
        self.min_lookahead_m, self.max_lookahead_m = min_lookahead_m, max_lookahead_m
        self.action_mode = action_mode
        self.route: Route | None = None
        self._s: float | None = None
        self._vehicle = EgoVehicle()

    def reset(self, info: Mapping[str, Any]) -> None:
        if "route" not in info:
            raise ValueError("the lane-keeping policy needs info['route'] from env.reset")
        self.route, self._s = info["route"], None

    def _target_speed(self, s: float) -> float:
        speed = self.speed if self.speed is not None else self.route.speed_at(s)
        return float(np.clip(speed, 0.0, MAX_SPEED_MPS))

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.route is None:
            raise RuntimeError("LaneKeeping.reset(info) must be called after env.reset (the runner does it)")
        x, y, yaw = (float(v) for v in obs["pose"])
        speed = float(obs["speed"][0])
        self._s, _ = self.route.project(np.array([x, y]), self._s)
        target_speed = self._target_speed(self._s)
        c, s = math.cos(yaw), math.sin(yaw)
        if self.action_mode == "trajectory":
            v = max(speed, target_speed)
            points = [self.route.point_at(self._s + v * t) - (x, y) for t in DEFAULT_ACTION_TIMES]
            return np.array([[c * p[0] + s * p[1], -s * p[0] + c * p[1]] for p in points], np.float32)
        lookahead = float(np.clip(self.lookahead_s * max(speed, target_speed), self.min_lookahead_m,
                                  self.max_lookahead_m))
        dx, dy = self.route.point_at(self._s + lookahead) - (x, y)
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        curvature = 2.0 * ly / max(lx * lx + ly * ly, 1e-6)
        wheel = math.atan(self._vehicle.wheelbase * curvature) * self._vehicle.steering_ratio
        return np.array([target_speed, np.clip(wheel / MAX_STEERING_WHEEL_RAD, -1.0, 1.0)], np.float32)


def load_policy(spec: str | Policy, action_mode: str = "control", **options: Any) -> Policy:
    """"lane_keeping" or "package.module:callable" (a callable, or a class / factory called with `options`)."""
    if callable(spec):
        return spec
    if spec == "lane_keeping":
        return LaneKeeping(action_mode=action_mode, **options)
    if not isinstance(spec, str) or ":" not in spec:
        raise PolicyError(f"policy must be one of {BUILTIN} or 'module:callable' (e.g. my_pkg.drive:policy), got {spec!r}")
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise PolicyError(f"policy {spec!r}: cannot import module {module_name!r} ({err}); is it on PYTHONPATH?") from err
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise PolicyError(f"policy {spec!r}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if isinstance(target, type) or options:
        target = target(**options)
    if not callable(target):
        raise PolicyError(f"policy {spec!r} is a {type(target).__name__}, not a callable obs -> action")
    return target
