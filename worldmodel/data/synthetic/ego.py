"""The ego vehicle: a kinematic bicycle model about the rear axle (the nuScenes ego origin)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Manoeuvre(str, Enum):
    """What the ego does from a script entry's start time on."""

    CRUISE = "cruise"
    ACCELERATE = "accelerate"
    BRAKE = "brake"
    STOP = "stop"
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    LANE_CHANGE_LEFT = "lane_change_left"
    LANE_CHANGE_RIGHT = "lane_change_right"


# An ego script: (start_time_s, manoeuvre, target_speed_mps) entries in time order; the first
# entry's target speed is also the speed the ego starts with.
EgoScript = list[tuple[float, Manoeuvre | str, float]]


@dataclass
class EgoVehicle:
    """Kinematic bicycle: exact arc per step for constant steering, speed tracked with bounded acceleration."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    speed: float = 0.0
    steering_wheel: float = 0.0  # rad, positive to the left (the last applied command)
    wheelbase: float = 2.8
    steering_ratio: float = 15.0
    max_wheel_angle: float = 0.6  # rad at the road wheels
    max_accel: float = 2.5  # m/s^2
    max_decel: float = 5.0  # m/s^2
    speed_gain: float = 1.2  # 1/s: acceleration per m/s of speed error
    min_accel: float = 1.0  # m/s^2 floor while off target, so targets are reached in finite time

    def next_speed(self, speed: float, target_speed: float, dt: float) -> float:
        """Speed after `dt` of proportional tracking of `target_speed`, never overshooting it, never negative."""
        error = target_speed - speed
        accel = float(np.sign(error) * max(abs(self.speed_gain * error), self.min_accel))
        accel = float(np.clip(accel, -self.max_decel, self.max_accel))
        new = speed + accel * dt
        if (target_speed - speed) * (target_speed - new) <= 0 or abs(target_speed - new) < 0.02:
            new = target_speed  # reached: settle exactly so cruising is exactly constant-speed
        return max(new, 0.0)

    def step(self, dt: float, target_speed: float, steering_wheel: float) -> None:
        """Advance `dt` seconds with a speed target (m/s) and a steering-wheel angle (rad, + left)."""
        wheel = float(np.clip(steering_wheel / self.steering_ratio, -self.max_wheel_angle, self.max_wheel_angle))
        self.steering_wheel = wheel * self.steering_ratio
        v1 = self.next_speed(self.speed, target_speed, dt)
        distance = 0.5 * (self.speed + v1) * dt
        curvature = np.tan(wheel) / self.wheelbase
        turn = curvature * distance
        if abs(turn) < 1e-9:
            self.x += distance * np.cos(self.yaw)
            self.y += distance * np.sin(self.yaw)
        else:  # the rear axle follows a circle of radius 1 / curvature
            self.x += (np.sin(self.yaw + turn) - np.sin(self.yaw)) / curvature
            self.y += (np.cos(self.yaw) - np.cos(self.yaw + turn)) / curvature
        self.yaw += turn
        self.speed = v1

    @property
    def pose(self) -> np.ndarray:
        return np.array([self.x, self.y, self.yaw])


@dataclass
class DriveLog:
    """Per-frame ego states of a drive: timestamps (n,), poses (n, 3) x, y, yaw, speeds (n,), steering (n,)."""

    timestamps: np.ndarray
    poses: np.ndarray
    speeds: np.ndarray
    steering: np.ndarray
    script: EgoScript = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.timestamps)


def parse_script(script: EgoScript) -> list[tuple[float, Manoeuvre, float]]:
    """Validated copy of a script: manoeuvres as enums, start times increasing from 0."""
    if not script:
        raise ValueError("an ego script needs at least one entry")
    parsed = [(float(t), Manoeuvre(m), float(v)) for t, m, v in script]
    times = [t for t, _, _ in parsed]
    if times[0] != 0.0 or any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError(f"script start times must begin at 0 and increase, got {times}")
    if any(v < 0 for _, _, v in parsed):
        raise ValueError("target speeds must be >= 0")
    return parsed


def target_speed_at(script: list[tuple[float, Manoeuvre, float]], t: float) -> tuple[int, float]:
    """Index of the active entry and its target speed at time t (STOP targets 0)."""
    i = max(j for j, (start, _, _) in enumerate(script) if start <= t + 1e-9)
    _, manoeuvre, speed = script[i]
    return i, 0.0 if manoeuvre is Manoeuvre.STOP else speed


def speed_profile(script: list[tuple[float, Manoeuvre, float]], duration_s: float, dt: float,
                  vehicle: EgoVehicle | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Speeds and travelled distances at times 0, dt, 2 dt, ... of a script (longitudinal control ignores steering)."""
    vehicle = vehicle or EgoVehicle()
    n = int(round(duration_s / dt))
    speeds, dist = np.zeros(n + 1), np.zeros(n + 1)
    speeds[0] = script[0][2]
    for i in range(n):
        _, target = target_speed_at(script, i * dt)
        speeds[i + 1] = vehicle.next_speed(speeds[i], target, dt)
        dist[i + 1] = dist[i] + 0.5 * (speeds[i] + speeds[i + 1]) * dt
    return speeds, dist
