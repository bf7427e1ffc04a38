"""Ego speed and steering-wheel angle from the nuScenes CAN bus expansion, sampled at camera times.

Units and signs (nuscenes-devkit can_bus/README.md):
- `pose` (50 Hz): `vel` (3,) m/s in the ego frame; its x component is the forward speed.
- `vehicle_monitor` (2 Hz): `vehicle_speed` in km/h; `steering` the steering-wheel angle in degrees.
  Positive is a left turn: the devkit maintainers confirmed that sign for the steering angle feedback
  (nutonomy/nuscenes-devkit issue #371, the CAN tutorial's left turn at the start of scene-0001), and
  the README states the wheel sensor reads the same as `vehicle_monitor.steering`.
Speed prefers `pose.vel` (50 Hz) over `vehicle_monitor` (2 Hz); a scene where neither covers every
camera time gets its speed from the ego poses instead (see tracks.py). Steering comes only from
`vehicle_monitor`: the 100 Hz `steeranglefeedback` has another range ([-7.7, 6.3] rad), so mixing the
two would give one field two meanings.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data.errors import CorruptFileError

log = logging.getLogger(__name__)

KMH_TO_MPS = 1.0 / 3.6
# How far outside a message stream's first / last message a camera time may lie and still be
# interpolated: about one message period, so a stream that stops early never gets extrapolated.
POSE_MARGIN_S = 0.05
MONITOR_MARGIN_S = 0.5


@dataclass(frozen=True)
class CanSignals:
    """Speed (m/s) and steering-wheel angle (rad, positive left) at the asked times; NaN where not recorded."""

    speed: np.ndarray | None
    steering: np.ndarray | None
    speed_source: str | None
    steering_source: str | None


def sample_signal(utimes: np.ndarray, values: np.ndarray, times_us: np.ndarray, margin_s: float) -> np.ndarray:
    """Linear interpolation of a message stream at times_us (both microseconds); NaN outside its span +- margin."""
    order = np.argsort(utimes, kind="stable")
    utimes, values = np.asarray(utimes, dtype=np.float64)[order], np.asarray(values, dtype=np.float64)[order]
    keep = np.concatenate([[True], np.diff(utimes) > 0])
    utimes, values = utimes[keep], values[keep]
    times = np.asarray(times_us, dtype=np.float64)
    out = np.interp(times, utimes, values)
    margin = margin_s * 1e6
    out[(times < utimes[0] - margin) | (times > utimes[-1] + margin)] = np.nan
    return out


class CanBus:
    """One dataset's CAN bus expansion read through the devkit's NuScenesCanBus; empty when it is absent."""

    def __init__(self, root: Path | None, strict: bool = False) -> None:
        self.strict = strict
        self.api: Any = None
        if root is not None and (Path(root) / "can_bus").is_dir():
            from nuscenes.can_bus.can_bus_api import NuScenesCanBus

            self.api = NuScenesCanBus(dataroot=str(root))
        self.unreadable: list[str] = []  # files that failed to parse (strict=False)

    def messages(self, scene: str, name: str) -> list[dict] | None:
        """The scene's messages of one type, or None when the expansion has none for it."""
        if self.api is None or not re.match(r"^scene-\d{4}$", scene):
            return None
        if int(scene[-4:]) in self.api.can_blacklist:  # the devkit raises a bare Exception for these
            return None
        path = Path(self.api.can_dir) / f"{scene}_{name}.json"
        if not path.is_file():
            return None
        try:
            messages = self.api.get_messages(scene, name, print_warnings=False)
        except (json.JSONDecodeError, AssertionError) as err:
            if self.strict:
                raise CorruptFileError(path, f"unreadable CAN bus messages ({err})") from err
            log.warning("%s: unreadable CAN bus messages (%s); the scene gets no CAN signals from it", path, err)
            self.unreadable.append(str(path))
            return None
        return messages if isinstance(messages, list) and messages else None

    def stream(self, scene: str, name: str, key: str, times_us: np.ndarray, margin_s: float,
               component: int | None = None) -> np.ndarray | None:
        """One field of one message type at camera times, or None when absent or malformed."""
        messages = self.messages(scene, name)
        if messages is None:
            return None
        try:
            utimes = np.array([m["utime"] for m in messages], dtype=np.float64)
            values = np.array([m[key] if component is None else m[key][component] for m in messages], dtype=np.float64)
        except (KeyError, IndexError, TypeError, ValueError) as err:
            path = Path(self.api.can_dir) / f"{scene}_{name}.json"
            if self.strict:
                raise CorruptFileError(path, f"CAN bus messages without a numeric {key!r} ({err!r})") from err
            log.warning("%s: messages without a numeric %r (%r); ignored", path, key, err)
            self.unreadable.append(str(path))
            return None
        return sample_signal(utimes, values, times_us, margin_s)

    def signals(self, scene: str, times_us: np.ndarray) -> CanSignals:
        """Speed and steering of one scene at camera times (microseconds, the sample_data clock)."""
        speed = steering = speed_source = steering_source = None
        vel = self.stream(scene, "pose", "vel", times_us, POSE_MARGIN_S, component=0)
        if vel is not None and np.all(np.isfinite(vel)):
            speed, speed_source = vel, "can:pose.vel"
        if speed is None:
            kmh = self.stream(scene, "vehicle_monitor", "vehicle_speed", times_us, MONITOR_MARGIN_S)
            if kmh is not None and np.all(np.isfinite(kmh)):
                speed, speed_source = kmh * KMH_TO_MPS, "can:vehicle_monitor.vehicle_speed"
        degrees = self.stream(scene, "vehicle_monitor", "steering", times_us, MONITOR_MARGIN_S)
        if degrees is not None and np.any(np.isfinite(degrees)):
            steering, steering_source = np.deg2rad(degrees), "can:vehicle_monitor.steering"
        return CanSignals(speed=speed, steering=steering, speed_source=speed_source, steering_source=steering_source)
