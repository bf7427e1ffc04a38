"""Where an episode starts: reference frames, the ego's state and history, the commanded route, and the world.

A scenario is a library name or YAML path (rollout/*.yaml), a loaded `Scenario`, or an int: the seed of a
procedural world driven by DEFAULT_SCRIPT. Procedural scenarios build the world around their script and
render the reference frames from its drive (exactly as worldmodel-rollout does); dataset and file scenarios
take them from the data through `worldmodel.rollout.sources`. The route is the path the scenario's script
drives (on the procedural world: the lane, through the road's bends), long enough for the horizon.

Scenario values are checked as in worldmodel-rollout (worldmodel/rollout/limits.py); the simulator also
refuses scripted speeds above its top speed (sim/spaces.py MAX_SPEED_MPS, 40 m/s), where its speed
actions and observations end.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data.synthetic import CAMERAS, ProceduralWorld, render_views, resolve_views
from worldmodel.rollout.engine import ChunkSchedule
from worldmodel.rollout.jobs import ModelRig, calibration_of
from worldmodel.rollout.limits import SEED
from worldmodel.rollout.scenario import ActionStep, ProceduralSource, Scenario, load_scenario, resolve_scenario
from worldmodel.rollout.script import integrate_script, to_ego_script
from worldmodel.rollout.seeds import SeedError
from worldmodel.rollout.sources import drive_procedural, procedural_calibration, scenario_job
from worldmodel.rollout.warp_start import CameraCalibration
from worldmodel.rollout.yamlmarks import ScenarioError
from worldmodel.sim.ego import EgoState
from worldmodel.sim.rewards import Route
from worldmodel.sim.spaces import MAX_SPEED_MPS

DEFAULT_SCRIPT = (ActionStep(0.0, "cruise", 10.0),)  # an int scenario: cruise at 10 m/s in a random world
ROUTE_MARGIN_S = 15.0  # the route reaches this far past the horizon at the script's speeds

ScenarioLike = str | Path | Scenario | int


@dataclass
class SimStart:
    """The first frames of an episode and everything the ego needs to continue from them."""

    name: str
    reference: np.ndarray  # uint8 (k, v, h, w, 3)
    history: list[EgoState]  # the ego at each reference frame (world frame, scenario time)
    route: Route  # world frame
    cameras: list[str]
    front_camera: dict[str, Any]  # intrinsics / camera_to_ego / image_size for the Vista goal, or {}
    world: ProceduralWorld | None  # the procedural world, when the scenario has one
    info: dict[str, Any]
    calibration: CameraCalibration | None = None  # every camera's, for the warp start; None for plain files


def check_sim_speeds(scenario: Scenario) -> Scenario:
    """`scenario` when every speed its script reaches is within the simulator's; else ScenarioError."""
    if scenario.actions is None:
        return scenario  # a recorded drive: the data's own speeds
    for i, (_, _, target) in enumerate(to_ego_script(scenario.actions)):
        if target > MAX_SPEED_MPS:
            name = f"actions[{i}].speed"
            raise ScenarioError(scenario.path, name, scenario.line_of(name),
                                f"{target:g} m/s is above the simulator's top speed of {MAX_SPEED_MPS:g} m/s "
                                "(its speed actions and observations end there; worldmodel-rollout takes up to 70)")
    return scenario


def as_scenario(value: ScenarioLike) -> Scenario:
    """A Scenario from a library name, a YAML path, an int (procedural world seed) or a Scenario."""
    if isinstance(value, Scenario):
        return check_sim_speeds(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        problem = SEED.problem(int(value))
        if problem is not None:
            raise SeedError(f"procedural scenario seed {int(value)}: {problem}")
        return Scenario(name=f"procedural_{int(value)}", path=Path(f"<procedural seed {int(value)}>"),
                        source=ProceduralSource(seed=int(value)), actions=DEFAULT_SCRIPT, seed=int(value),
                        description=f"procedural world {int(value)}, cruise at 10 m/s")
    if isinstance(value, (str, Path)):
        return check_sim_speeds(load_scenario(resolve_scenario(value)))
    raise TypeError(f"scenario must be a name, a YAML path, an int seed or a Scenario, got {type(value).__name__}")


def _front_camera(cameras: list[str], size: tuple[int, int]) -> dict[str, Any]:
    if "CAM_FRONT" not in CAMERAS or "CAM_FRONT" not in cameras:
        return {}
    front = CAMERAS["CAM_FRONT"]
    return {"intrinsics": front.intrinsics(size), "camera_to_ego": front.camera_to_ego(), "image_size": tuple(size)}


def _states(times: np.ndarray, poses: np.ndarray, speeds: np.ndarray, steering: np.ndarray | None) -> list[EgoState]:
    steer = np.zeros(len(times)) if steering is None else steering
    return [EgoState(float(t), float(p[0]), float(p[1]), float(p[2]), float(v), float(w))
            for t, p, v, w in zip(times, poses, speeds, steer)]


def procedural_start(scenario: Scenario, rig: ModelRig, first_reference: int, horizon_s: float) -> SimStart:
    """Build the world around the script, drive it for the route, render the reference frames."""
    source = scenario.source
    if not isinstance(source, ProceduralSource):
        raise ValueError(f"scenario {scenario.name} ({scenario.path}) is not procedural")
    script = to_ego_script(scenario.actions or DEFAULT_SCRIPT)
    duration = (first_reference - 1) / rig.fps + horizon_s + ROUTE_MARGIN_S
    world, log = drive_procedural(scenario, source, script, duration, rig.fps)
    cameras = [c.name for c in resolve_views(rig.views)]
    reference = np.stack([render_views(world, log.poses[k], float(log.timestamps[k]), cameras, rig.size)
                          for k in range(first_reference)])
    history = _states(log.timestamps[:first_reference], log.poses[:first_reference], log.speeds[:first_reference],
                      log.steering[:first_reference])
    return SimStart(scenario.name, reference, history, Route.from_path(log.poses[:, :2], log.speeds), cameras,
                    _front_camera(cameras, rig.size), world, scenario.to_dict(),
                    calibration_of(*procedural_calibration(cameras, rig.size), pixel_offset=0.5))


def data_start(scenario: Scenario, rig: ModelRig, first_reference: int, horizon_s: float) -> SimStart:
    """Reference frames from a dataset clip or files; the route from the script (or the clip's recorded motion)."""
    frames = max(int(round(horizon_s * rig.fps)) + first_reference, rig.chunk_frames)
    schedule = ChunkSchedule(rig.chunk_frames, first_reference, min(3, rig.chunk_frames - 1), 1)
    job = scenario_job(scenario, rig, schedule, first_reference, frames)
    if job.ego is None:
        raise ScenarioError(scenario.path, "source", None, "this clip has no ego states to start the ego from")
    track = job.ego
    if scenario.actions is not None:
        route_log = integrate_script(to_ego_script(scenario.actions), horizon_s + ROUTE_MARGIN_S, rig.fps)
        route = Route.from_path(route_log.poses[:, :2], route_log.speeds)
    else:
        route = Route.from_path(track.poses[:, :2], track.speeds)
    history = _states(track.timestamps[:first_reference], track.poses[:first_reference],
                      track.speeds[:first_reference],
                      None if track.steering is None else track.steering[:first_reference])
    return SimStart(scenario.name, job.reference, history, route, list(job.cameras),
                    _front_camera(list(job.cameras), rig.size), None, scenario.to_dict(), job.calibration)


def start_for(value: ScenarioLike, rig: ModelRig, first_reference: int, horizon_s: float) -> SimStart:
    """The SimStart of any scenario (see the module docstring)."""
    scenario = as_scenario(value)
    if isinstance(scenario.source, ProceduralSource):
        return procedural_start(scenario, rig, first_reference, horizon_s)
    return data_start(scenario, rig, first_reference, horizon_s)
