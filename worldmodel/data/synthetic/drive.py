"""Driving the ego through a world: scripts, a lane-keeping driver, and worlds built around a script.

The ego always keeps to its lane (pure pursuit on the lane centre); the road itself bends. A
turn manoeuvre slows the ego to its target speed and `world_for_script` places a junction-like
bend of that direction exactly where the ego reaches that speed, so any script can be driven.
Longitudinal control ignores steering, which is what makes that placement exact.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from worldmodel.data.synthetic.ego import (DriveLog, EgoScript, EgoVehicle, Manoeuvre, parse_script,
                                           speed_profile, target_speed_at)
from worldmodel.data.synthetic.road import SAMPLE_M, Road
from worldmodel.data.synthetic.world import (ProceduralWorld, WorldConfig, junction_bend, random_bends,
                                             random_layout)

LANE_CHANGE_S = 2.5  # duration of the lateral move of a lane change
SIM_HZ = 50.0  # internal integration rate; frames are every k-th step
_LANE_STEP = {Manoeuvre.LANE_CHANGE_LEFT: 1, Manoeuvre.LANE_CHANGE_RIGHT: -1}
_TURN_DIR = {Manoeuvre.TURN_LEFT: 1, Manoeuvre.TURN_RIGHT: -1}


def _lane_changes(script: list[tuple[float, Manoeuvre, float]]) -> list[tuple[float, int]]:
    return [(t, _LANE_STEP[m]) for t, m, _ in script if m in _LANE_STEP]


def _lane_offset_fn(world: ProceduralWorld, script: list[tuple[float, Manoeuvre, float]]):
    """Lateral target d(t): the lane centre, blended with a half-cosine over each lane change."""
    layout, lane = world.layout, world.ego_lane
    segments = []  # (start, d_from, d_to)
    for t, step in _lane_changes(script):
        new = lane + step
        if not 0 <= new < layout.lanes_forward:
            raise ValueError(f"lane change at {t:.1f}s leaves the road "
                             f"({layout.lanes_forward} lanes, from lane {lane})")
        segments.append((t, layout.lane_offset(lane), layout.lane_offset(new)))
        lane = new
    d0 = layout.lane_offset(world.ego_lane)

    def offset(t: float) -> float:
        d = d0
        for start, a, b in segments:
            if t < start:
                break
            u = min((t - start) / LANE_CHANGE_S, 1.0)
            d = a + (b - a) * 0.5 * (1 - math.cos(math.pi * u))
        return d

    return offset


def simulate_drive(world: ProceduralWorld, script: EgoScript | None = None, duration_s: float = 10.0,
                   fps: float = 10.0, seed: int | tuple[int, ...] = 0) -> DriveLog:
    """Drive the ego from `world.start_pose()` for `duration_s`; states at every frame of `fps`.

    `script=None` draws a random script without turns (the ego still follows the world's bends).
    """
    if script is None:
        script = random_script(np.random.default_rng(seed), duration_s, allow_turns=False,
                               lanes_forward=world.layout.lanes_forward, start_lane=world.ego_lane)
    parsed = parse_script(script)
    substeps = max(1, math.ceil(SIM_HZ / fps))
    dt = 1.0 / (fps * substeps)
    n_frames = int(round(duration_s * fps)) + 1
    offset = _lane_offset_fn(world, parsed)
    road = world.road
    x, y, yaw = world.start_pose()
    ego = EgoVehicle(x=x, y=y, yaw=yaw, speed=parsed[0][2])
    s_hint = world.config.ego_start_s
    times, poses, speeds, steering = [], [], [], []
    for frame in range(n_frames):
        for sub in range(substeps):
            t = (frame * substeps + sub) * dt
            s_hint, _ = road.project(np.array([ego.x, ego.y]), s_hint)
            if s_hint > road.length - 5.0:
                raise ValueError(f"the drive leaves the end of the road ({road.length:.0f} m) at {t:.1f}s")
            wheel = _pure_pursuit(ego, road, s_hint, offset, t)
            if sub == 0:
                times.append(t), poses.append(ego.pose), speeds.append(ego.speed)
                steering.append(float(np.clip(wheel, -ego.max_wheel_angle, ego.max_wheel_angle)) * ego.steering_ratio)
            if frame == n_frames - 1:
                break
            _, target = target_speed_at(parsed, t)
            ego.step(dt, target, wheel * ego.steering_ratio)
    return DriveLog(np.array(times), np.array(poses), np.array(speeds), np.array(steering), list(script))


def _pure_pursuit(ego: EgoVehicle, road: Road, s: float, offset, t: float) -> float:
    """Road-wheel angle steering the rear axle along the arc through a look-ahead point on the target path."""
    lookahead = float(np.clip(3.0 + 0.7 * ego.speed, 5.0, 18.0))
    target = road.point(min(s + lookahead, road.length), offset(t + 0.5 * lookahead / max(ego.speed, 2.0)))
    dx, dy = target[0] - ego.x, target[1] - ego.y
    c, sn = math.cos(ego.yaw), math.sin(ego.yaw)
    lx, ly = c * dx + sn * dy, -sn * dx + c * dy
    curvature = 2.0 * ly / max(lx * lx + ly * ly, 1e-6)
    return math.atan(ego.wheelbase * curvature)


def random_script(rng: np.random.Generator, duration_s: float, allow_turns: bool = True, lanes_forward: int = 3,
                  start_lane: int | None = None) -> EgoScript:
    """A random sequence of manoeuvres starting at a cruising speed; lane changes stay within `lanes_forward`."""
    speed = float(rng.uniform(5.0, 14.0))
    script: EgoScript = [(0.0, Manoeuvre.CRUISE, speed)]
    # Without a known start lane, any lanes_forward-wide window of lane offsets is allowed.
    lane, lo, hi = 0, 0, 0
    low_limit = -start_lane if start_lane is not None else None
    high_limit = lanes_forward - 1 - start_lane if start_lane is not None else None
    t = float(rng.uniform(0.5, 4.0))
    while t < duration_s:
        options = {Manoeuvre.CRUISE: 0.2, Manoeuvre.ACCELERATE: 0.15, Manoeuvre.BRAKE: 0.12, Manoeuvre.STOP: 0.07}
        if allow_turns:
            options.update({Manoeuvre.TURN_LEFT: 0.12, Manoeuvre.TURN_RIGHT: 0.12})
        for m, step in _LANE_STEP.items():
            new = lane + step
            fits = max(hi, new) - min(lo, new) < lanes_forward
            if low_limit is not None:
                fits = low_limit <= new <= high_limit
            if fits and speed > 3.0:
                options[m] = 0.11
        if speed == 0.0:  # a stopped ego drives off again
            options = {Manoeuvre.ACCELERATE: 1.0}
        names = list(options)
        p = np.array([options[m] for m in names])
        manoeuvre = names[int(rng.choice(len(names), p=p / p.sum()))]
        duration = float(rng.uniform(2.0, 5.0))
        if manoeuvre is Manoeuvre.ACCELERATE:
            speed = float(min(speed + rng.uniform(2.0, 6.0), 17.0))
        elif manoeuvre is Manoeuvre.BRAKE:
            speed = float(max(speed - rng.uniform(2.0, 6.0), 2.0))
        elif manoeuvre is Manoeuvre.STOP:
            speed = 0.0
        elif manoeuvre in _TURN_DIR:
            speed, duration = float(rng.uniform(3.5, 6.0)), float(rng.uniform(6.0, 9.0))
        elif manoeuvre in _LANE_STEP:
            lane += _LANE_STEP[manoeuvre]
            lo, hi = min(lo, lane), max(hi, lane)
            duration = float(rng.uniform(LANE_CHANGE_S + 0.5, 6.0))
        script.append((round(t, 3), manoeuvre, speed))
        t += duration
    return script


def world_for_script(seed: int | tuple[int, ...], script: EgoScript, config: WorldConfig = WorldConfig(),
                     duration_s: float | None = None) -> ProceduralWorld:
    """A world whose road bends where the script turns and has the lanes its lane changes need."""
    parsed = parse_script(script)
    seed_tuple = tuple(seed) if isinstance(seed, tuple) else (int(seed),)
    rng = np.random.default_rng((*seed_tuple, 0x5C41))
    duration = duration_s if duration_s is not None else parsed[-1][0] + 10.0
    cumulative = np.cumsum([0] + [step for _, step in _lane_changes(parsed)])
    needed = int(cumulative.max() - cumulative.min()) + 1
    if config.lanes_forward is not None and config.lanes_forward < needed:
        raise ValueError(f"the script's lane changes need {needed} forward lanes, config has {config.lanes_forward}")
    layout = random_layout(rng, config, min_forward=needed)
    ego_lane = config.ego_lane if config.ego_lane is not None else int(
        -cumulative.min() + rng.integers(layout.lanes_forward - needed + 1))

    def lane_at(t: float) -> int:
        return ego_lane + sum(step for start, step in _lane_changes(parsed) if start <= t)

    dt = 1.0 / SIM_HZ
    speeds, dist = speed_profile(parsed, duration, dt)
    start = config.ego_start_s
    length = max(config.length_m, start + dist[-1] + 120.0)
    bends, free_from = [], start + 10.0

    def ref_s(distance: float, lane: int) -> float:
        """Reference arc length where the ego, driving in `lane`, has covered `distance` from the start."""
        road = Road(length, tuple(bends), layout)
        lane_len = np.concatenate([[0.0], np.cumsum((1 - road.curvature[:-1] * layout.lane_offset(lane)) * SAMPLE_M)])
        return float(np.interp(np.interp(start, road.s, lane_len) + distance, lane_len, road.s))

    for t_turn, manoeuvre, v_turn in parsed:
        if manoeuvre not in _TURN_DIR:
            continue
        i0 = int(round(t_turn / dt))
        reached = np.flatnonzero(np.abs(speeds[i0:] - v_turn) < 0.3)
        i = min(i0 + (int(reached[0]) if len(reached) else 0), len(dist) - 1)
        lane = lane_at(i * dt)
        if config.curves and config.bends is None:
            bends += random_bends(rng, layout, free_from, ref_s(dist[i], lane) - 50.0, junction_probability=0.0)
        s_bend = max(ref_s(dist[i], lane), free_from)
        bend = junction_bend(rng, layout, s_bend, _TURN_DIR[manoeuvre])
        bends.append(bend)
        free_from = bend.start_s + bend.length + 5.0
        length = max(length, free_from + 120.0)
    if config.curves and config.bends is None:
        bends += random_bends(rng, layout, free_from, length, junction_probability=0.0)
    world_config = replace(config, bends=tuple(bends), lanes_forward=layout.lanes_forward, ego_lane=ego_lane,
                           length_m=length)
    return ProceduralWorld(seed, world_config, layout=layout)
