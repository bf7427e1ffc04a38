"""The allowed range of every number a scenario file gives, and why: the one place these ranges are kept.

A scenario that asks for something no road vehicle does (a 300 m/s cruise, a junction turn at motorway
speed) is a typo or a unit mix-up; the rollout would still draw a video, so the loader refuses the value
with the file, line, field, value, range and reason. The scenario docs (worldmodel/rollout/scenario.py)
list these ranges; a test keeps that list and this table the same.

Scenarios give no steering angles, yaw rates, accelerations or curvatures: the ego model
(worldmodel/data/synthetic/ego.py, EgoVehicle) bounds them itself (2.5 m/s^2 up, 5 m/s^2 down, 0.6 rad at
the wheels). The one curvature a scenario controls is a turn's, through its speed: TURN_SPEED.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """low..high (high None: no upper bound) in `unit`; `low_open`: low itself is refused (a horizon > 0)."""

    low: float
    high: float | None
    unit: str
    why: str
    low_open: bool = False

    def allows(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and (self.high is None or value <= self.high)

    def describe(self) -> str:
        """The range in words, e.g. `0..70 m/s`, `> 0 and <= 600 s`, `>= 0 s`."""
        unit = f" {self.unit}" if self.unit else ""
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}{unit}"
        if self.low_open:
            return f"> {_number(self.low)} and <= {_number(self.high)}{unit}"
        return f"{_number(self.low)}..{_number(self.high)}{unit}"

    def problem(self, value: float) -> str | None:
        """None when `value` is allowed, else the one-line complaint: value, allowed range, reason."""
        if self.allows(value):
            return None
        unit = f" {self.unit}" if self.unit else ""
        return f"{_number(value)}{unit} is out of range (allowed {self.describe()}: {self.why})"


def _number(value: float) -> str:
    # Whole numbers in full and without ".0" (a seed of 4294967296 must not print as 4.29497e+09).
    if isinstance(value, int):
        return str(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(float(value))


# A turn drives a junction bend: the procedural world's are 12..22 m in radius (world.py, junction_bend),
# the kinematic model's 15 m (script.py). On the tightest one the lateral acceleration v^2 / r must stay
# within what a road car's tyres hold on dry asphalt, about 0.8 g.
JUNCTION_RADIUS_MIN_M = 12.0
LATERAL_ACCEL_MAX_MPS2 = 8.0
TURN_SPEED_MAX_MPS = math.floor(math.sqrt(LATERAL_ACCEL_MAX_MPS2 * JUNCTION_RADIUS_MIN_M) * 10) / 10  # 9.7
HORIZON_MAX_S = 600.0

SPEED = Limit(0, 70.0, "m/s", "70 m/s is 252 km/h, faster than road vehicles are driven")
TURN_SPEED = Limit(0, TURN_SPEED_MAX_MPS, "m/s",
                   f"a turn drives a junction bend of {JUNCTION_RADIUS_MIN_M:g} m radius or more, and faster its "
                   f"v^2/r passes {LATERAL_ACCEL_MAX_MPS2:g} m/s^2 (0.8 g), more than a road car's tyres hold")
HORIZON = Limit(0, HORIZON_MAX_S, "s", "a rollout needs some video, and 10 minutes is already 6000 frames at "
                "10 Hz; split longer drives", low_open=True)
ACTION_TIME = Limit(0, HORIZON_MAX_S, "s", "actions start at 0 s (the first frame) and within the longest horizon")
VIDEO_START = Limit(0, None, "s", "time in the video, from its first frame")
SEED = Limit(0, 2**32 - 1, "", "a seed is a 32-bit unsigned integer, what numpy, torch and gymnasium all accept")
LANES = Limit(1, 6, "lanes", "a road has at least one forward lane, and motorways have at most about 6 each way")
TRAFFIC = Limit(0, 20.0, "vehicles per 100 m of lane", "20 is bumper to bumper (4.5 m cars 0.5 m apart)")
CLIP = Limit(0, None, "", "clips are numbered from 0")

# Every scenario field that takes a number, by its dotted name in the file ([i]: any action).
FIELDS: dict[str, Limit] = {
    "seed": SEED,
    "horizon_s": HORIZON,
    "source.procedural.seed": SEED,
    "source.procedural.lanes": LANES,
    "source.procedural.traffic": TRAFFIC,
    "source.dataset.clip": CLIP,
    "source.video.start_s": VIDEO_START,
    "actions[i].at": ACTION_TIME,
    "actions[i].speed": SPEED,
    "actions[i].speed (turn_left, turn_right)": TURN_SPEED,
}
