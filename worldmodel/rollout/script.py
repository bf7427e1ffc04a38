"""Ego action scripts in plain terms -> the procedural world's EgoScript, or ego states from a kinematic model.

The procedural source drives the script through the world (`simulate_drive`), where the road
bends at turns. Dataset and file sources have no road model, so their ego states come from a
kinematic bicycle integrated here: the same speed controller as the world's ego, a 90 degree arc
for a turn and a half-cosine lateral move for a lane change.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from worldmodel.data.synthetic import DriveLog, EgoScript, EgoVehicle, Manoeuvre
from worldmodel.data.synthetic.drive import LANE_CHANGE_S
from worldmodel.data.synthetic.ego import parse_script, target_speed_at
from worldmodel.rollout.scenario import ActionStep

TURN_SPEED_MPS = 5.0  # a turn slows to this unless the script says otherwise
SPEED_STEP_MPS = 5.0  # accelerate / brake without a target change the speed by this much
MIN_BRAKE_SPEED_MPS = 2.0
MAX_SPEED_MPS = 25.0
TURN_RADIUS_M = 15.0  # kinematic turns: a junction-sized arc
TURN_ANGLE_RAD = math.pi / 2
LANE_WIDTH_M = 3.5
SIM_HZ = 50.0

_MANOEUVRE = {"cruise": Manoeuvre.CRUISE, "accelerate": Manoeuvre.ACCELERATE, "brake": Manoeuvre.BRAKE,
              "brake_to_stop": Manoeuvre.STOP, "stop": Manoeuvre.STOP, "turn_left": Manoeuvre.TURN_LEFT,
              "turn_right": Manoeuvre.TURN_RIGHT, "lane_change_left": Manoeuvre.LANE_CHANGE_LEFT,
              "lane_change_right": Manoeuvre.LANE_CHANGE_RIGHT}


def to_ego_script(steps: Sequence[ActionStep]) -> EgoScript:
    """Plain steps -> (start_s, Manoeuvre, target_speed) entries, filling in each manoeuvre's default speed."""
    script: EgoScript = []
    speed = 0.0
    for step in steps:
        manoeuvre = _MANOEUVRE[step.do]
        if step.speed is not None:
            target = step.speed
        elif manoeuvre is Manoeuvre.ACCELERATE:
            target = min(speed + SPEED_STEP_MPS, MAX_SPEED_MPS)
        elif manoeuvre is Manoeuvre.BRAKE:
            target = max(speed - SPEED_STEP_MPS, min(speed, MIN_BRAKE_SPEED_MPS))
        elif manoeuvre in (Manoeuvre.TURN_LEFT, Manoeuvre.TURN_RIGHT):
            target = min(speed, TURN_SPEED_MPS) if speed > 0 else TURN_SPEED_MPS
        else:
            target = speed
        if manoeuvre is Manoeuvre.STOP:
            target = 0.0
        script.append((float(step.at), manoeuvre, float(target)))
        speed = target
    return script


def _lateral_offset(script: list[tuple[float, Manoeuvre, float]], t: float) -> tuple[float, float]:
    """Lateral offset (m, + left) and its time derivative from the script's lane changes at time t."""
    d, rate = 0.0, 0.0
    for start, manoeuvre, _ in script:
        if start > t or manoeuvre not in (Manoeuvre.LANE_CHANGE_LEFT, Manoeuvre.LANE_CHANGE_RIGHT):
            continue
        sign = 1.0 if manoeuvre is Manoeuvre.LANE_CHANGE_LEFT else -1.0
        u = min((t - start) / LANE_CHANGE_S, 1.0)
        d += sign * LANE_WIDTH_M * 0.5 * (1 - math.cos(math.pi * u))
        if u < 1.0:
            rate += sign * LANE_WIDTH_M * 0.5 * math.pi * math.sin(math.pi * u) / LANE_CHANGE_S
    return d, rate


def integrate_script(script: EgoScript, duration_s: float, fps: float) -> DriveLog:
    """Ego states at every frame of `fps` for `duration_s`, from a kinematic bicycle driving `script`.

    Turns follow an arc of TURN_RADIUS_M until the heading has changed by 90 degrees; lane changes
    steer the heading onto the half-cosine lateral path of the world's lane changes.
    """
    parsed = parse_script(script)
    vehicle = EgoVehicle(speed=parsed[0][2])
    substeps = max(1, math.ceil(SIM_HZ / fps))
    dt = 1.0 / (fps * substeps)
    n_frames = int(round(duration_s * fps)) + 1
    road_yaw = 0.0  # heading of the (virtual) lane the ego follows; turns rotate it
    turned: dict[int, float] = {}
    times, poses, speeds, steering = [], [], [], []
    for frame in range(n_frames):
        for sub in range(substeps):
            t = (frame * substeps + sub) * dt
            index, target = target_speed_at(parsed, t)
            _, manoeuvre, _ = parsed[index]
            curvature = 0.0
            if manoeuvre in (Manoeuvre.TURN_LEFT, Manoeuvre.TURN_RIGHT) and turned.get(index, 0.0) < TURN_ANGLE_RAD:
                curvature = (1.0 if manoeuvre is Manoeuvre.TURN_LEFT else -1.0) / TURN_RADIUS_M
            _, lateral_rate = _lateral_offset(parsed, t)
            speed = max(vehicle.speed, 1e-3)
            # Heading that makes the lateral rate with the current speed, on top of the lane's heading.
            heading = road_yaw + math.atan2(lateral_rate, speed)
            next_speed = vehicle.next_speed(vehicle.speed, target, dt)
            distance = 0.5 * (vehicle.speed + next_speed) * dt
            turn = curvature * distance
            yaw_change = (heading + turn) - vehicle.yaw
            path_curvature = yaw_change / distance if distance > 1e-6 else 0.0
            wheel = math.atan(vehicle.wheelbase * path_curvature) * vehicle.steering_ratio
            if sub == 0:
                times.append(t), poses.append(vehicle.pose), speeds.append(vehicle.speed)
                steering.append(float(np.clip(wheel, -vehicle.max_wheel_angle * vehicle.steering_ratio,
                                              vehicle.max_wheel_angle * vehicle.steering_ratio)))
            if frame == n_frames - 1:
                break
            vehicle.step(dt, target, wheel)
            if turn:
                turned[index] = turned.get(index, 0.0) + abs(turn)
                road_yaw += turn
    return DriveLog(np.array(times), np.array(poses), np.array(speeds), np.array(steering), list(script))


def annotate_lane_changes(plan: list[tuple], script: EgoScript, chunk_starts_s: Sequence[float],
                          window_s: float, min_overlap_s: float = 1.0) -> list[tuple]:
    """Set the command of chunks whose action window overlaps a scripted lane change to LANE_CHANGE_*.

    A lane change's lateral move takes LANE_CHANGE_S, longer than the 2 s action window, so the
    trajectory rule (`derive_command`) rarely sees enough offset to call it one. The script states
    the intent, as nuScenes annotates it; trajectory, speed and angle stay measured.
    """
    from worldmodel.data.actions import Command

    commands = {Manoeuvre.LANE_CHANGE_LEFT: Command.LANE_CHANGE_LEFT,
                Manoeuvre.LANE_CHANGE_RIGHT: Command.LANE_CHANGE_RIGHT}
    out = []
    for (values, valid), t0 in zip(plan, chunk_starts_s):
        values = values.clone()
        for start, manoeuvre, _ in parse_script(script):
            overlap = min(t0 + window_s, start + LANE_CHANGE_S) - max(t0, start)
            if manoeuvre in commands and overlap >= min_overlap_s and bool(valid[0, 0]):
                values[0, 0] = float(commands[manoeuvre])
        out.append((values, valid))
    return out
