"""Ego state of a closed-loop episode, integrated from the commanded actions by the procedural world's bicycle model.

The ego is `worldmodel.data.synthetic.EgoVehicle` (kinematic bicycle about the rear axle, speed tracked with
bounded acceleration), stepped at 50 Hz between frames. A controller turns an action into a speed target
and a steering-wheel angle at every sub-step: `HoldControl` for (target speed, steering) actions,
`TrackTrajectory` (pure pursuit) for waypoint actions.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from worldmodel.data.actions import DEFAULT_ACTION_TIMES
from worldmodel.data.synthetic import EgoVehicle

SIM_HZ = 50.0
TRACK_LOOKAHEAD_S = 0.5  # pure pursuit aims at the trajectory point this far ahead in time
MIN_LOOKAHEAD_M = 1.0  # closer than this (nearly stopped) the ego keeps the wheel straight


@dataclass(frozen=True)
class EgoState:
    """The ego at one frame: time (s), world pose x, y (m), yaw (rad), speed (m/s), steering wheel (rad, + left)."""

    time_s: float
    x: float
    y: float
    yaw: float
    speed: float
    steering: float
    wheelbase: float = 2.8
    steering_ratio: float = 15.0

    @property
    def pose(self) -> np.ndarray:
        return np.array([self.x, self.y, self.yaw])

    @property
    def yaw_rate(self) -> float:
        """rad/s of the bicycle at this speed and steering (+ left)."""
        return self.speed * math.tan(self.steering / self.steering_ratio) / self.wheelbase


class Controller(Protocol):
    """Speed target (m/s) and steering-wheel angle (rad) for the vehicle at time t (s)."""

    def __call__(self, vehicle: EgoVehicle, time_s: float) -> tuple[float, float]: ...


@dataclass(frozen=True)
class HoldControl:
    """Holds a speed target and a steering-wheel angle."""

    target_speed: float
    steering_wheel: float

    def __call__(self, vehicle: EgoVehicle, time_s: float) -> tuple[float, float]:
        return self.target_speed, self.steering_wheel


class TrackTrajectory:
    """Follows waypoints (n, 2) given in the ego frame of `origin` (x, y, yaw) at `time_s` + `times`: pure pursuit.

    The speed target is the mean speed of the trajectory segment being driven; the steering aims at the
    trajectory's point TRACK_LOOKAHEAD_S ahead in time (extrapolated along the last segment past the end).
    """

    def __init__(self, waypoints: np.ndarray, origin: np.ndarray, time_s: float,
                 times: tuple[float, ...] = DEFAULT_ACTION_TIMES) -> None:
        c, s = math.cos(origin[2]), math.sin(origin[2])
        local = np.concatenate([np.zeros((1, 2)), np.asarray(waypoints, np.float64)])
        self.points = np.stack([origin[0] + c * local[:, 0] - s * local[:, 1],
                                origin[1] + s * local[:, 0] + c * local[:, 1]], axis=-1)  # (n + 1, 2) world
        self.times = time_s + np.concatenate([[0.0], np.asarray(times, np.float64)])
        self.speeds = np.linalg.norm(np.diff(self.points, axis=0), axis=1) / np.diff(self.times)

    def point_at(self, time_s: float) -> np.ndarray:
        """World (2,) position of the trajectory at `time_s`, linear past its last waypoint."""
        if time_s <= self.times[-1]:
            return np.array([np.interp(time_s, self.times, self.points[:, k]) for k in range(2)])
        rate = (self.points[-1] - self.points[-2]) / (self.times[-1] - self.times[-2])
        return self.points[-1] + rate * (time_s - self.times[-1])

    def __call__(self, vehicle: EgoVehicle, time_s: float) -> tuple[float, float]:
        segment = int(np.clip(np.searchsorted(self.times, time_s, side="right") - 1, 0, len(self.speeds) - 1))
        target = self.point_at(time_s + TRACK_LOOKAHEAD_S)
        dx, dy = target[0] - vehicle.x, target[1] - vehicle.y
        c, s = math.cos(vehicle.yaw), math.sin(vehicle.yaw)
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        if lx * lx + ly * ly < MIN_LOOKAHEAD_M ** 2:
            return float(self.speeds[segment]), 0.0
        curvature = 2.0 * ly / (lx * lx + ly * ly)
        return float(self.speeds[segment]), math.atan(vehicle.wheelbase * curvature) * vehicle.steering_ratio


class EgoIntegrator:
    """Steps an EgoVehicle frame by frame (SIM_HZ sub-steps) and reports its state at every frame time."""

    def __init__(self, state: EgoState, fps: float) -> None:
        self.fps = float(fps)
        self.substeps = max(1, math.ceil(SIM_HZ / self.fps))
        self.vehicle = EgoVehicle(x=state.x, y=state.y, yaw=state.yaw, speed=state.speed,
                                  steering_wheel=state.steering)
        self.start_time = state.time_s
        self.frame = 0  # frames advanced since the start

    @property
    def time_s(self) -> float:
        return self.start_time + self.frame / self.fps

    @property
    def state(self) -> EgoState:
        v = self.vehicle
        return EgoState(self.time_s, float(v.x), float(v.y), float(v.yaw), float(v.speed), float(v.steering_wheel),
                        v.wheelbase, v.steering_ratio)

    def advance(self, controller: Controller, frames: int) -> list[EgoState]:
        """Drive `frames` frame intervals under `controller`; the states at the frames reached."""
        dt = 1.0 / (self.fps * self.substeps)
        out = []
        for _ in range(frames):
            for sub in range(self.substeps):
                t = self.time_s + sub * dt
                target, wheel = controller(self.vehicle, t)
                self.vehicle.step(dt, target, wheel)
            self.frame += 1
            out.append(self.state)
        return out

    def preview(self, controller: Controller, frames: int) -> list[EgoState]:
        """The states `advance` would reach, on a copy: this integrator does not move."""
        return copy.deepcopy(self).advance(controller, frames)
