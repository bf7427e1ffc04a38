"""Action scripts become the Vista fields a model expects, per chunk, in the procedural world and kinematically."""
from __future__ import annotations

import numpy as np
import pytest

from worldmodel.data.actions import Command
from worldmodel.rollout.engine import ChunkSchedule
from worldmodel.rollout.jobs import ModelRig
from worldmodel.rollout.plan_plot import chunk_summary
from worldmodel.rollout.scenario import ActionStep, DatasetSource, Scenario, load_scenario, resolve_scenario
from worldmodel.rollout.script import integrate_script, to_ego_script
from worldmodel.rollout.sources import files_job, procedural_job

RIG = ModelRig(chunk_frames=8, fps=10.0, size=(32, 64), views="front")


def _plan(name: str):
    scenario = load_scenario(resolve_scenario(name))
    frames = int(round(scenario.horizon_s * RIG.fps))
    schedule = ChunkSchedule.for_horizon(RIG.chunk_frames, 1, 3, frames)
    job = procedural_job(scenario, scenario.source, RIG, schedule, 1, frames)
    assert job.reference.shape == (1, 1, 32, 64, 3)
    values = np.concatenate([v.numpy() for v, _ in job.plan])  # (chunks, 19)
    valid = np.concatenate([m.numpy() for _, m in job.plan])
    return values, valid


def _commands(values: np.ndarray) -> set[Command]:
    return {Command(int(c)) for c in values[:, 0]}


@pytest.mark.parametrize("name, command, sign", [("left_turn", Command.LEFT, 1.0), ("right_turn", Command.RIGHT, -1.0)])
def test_turns_give_lateral_waypoints_steering_and_command(name: str, command: Command, sign: float) -> None:
    values, valid = _plan(name)
    assert valid[:, :4].all()  # command, trajectory, speed, angle measured exactly
    turning = values[:, 0] == command
    assert turning.sum() >= 3, _commands(values)
    opposite = Command.RIGHT if command is Command.LEFT else Command.LEFT
    assert opposite not in _commands(values)
    final_y = values[turning, 1 + 7]  # trajectory (4, 2) starts at column 1; last waypoint's y
    angle = values[turning, 13:17]
    assert (sign * final_y > 1.0).all() and (sign * angle.mean(axis=1) > 0).all()


def test_brake_to_stop_ends_in_stop_and_speeds_fall() -> None:
    values, _ = _plan("brake_to_stop")
    assert Command(int(values[-1, 0])) is Command.STOP
    assert Command(int(values[0, 0])) is Command.STRAIGHT
    assert values[-1, 9:13].max() < 0.5 and values[0, 9:13].min() > 9.0


@pytest.mark.parametrize("name, command", [("lane_change_left", Command.LANE_CHANGE_LEFT),
                                           ("lane_change_right", Command.LANE_CHANGE_RIGHT)])
def test_lane_changes_give_lane_change_commands(name: str, command: Command) -> None:
    values, _ = _plan(name)
    assert command in _commands(values)
    assert not _commands(values) & {Command.LEFT, Command.RIGHT, Command.STOP}


def test_accelerate_raises_the_requested_speeds() -> None:
    values, _ = _plan("accelerate")
    assert values[0, 9] < 6.0 and values[-1, 12] > 14.0


def test_plain_steps_fill_in_default_speeds() -> None:
    script = to_ego_script([ActionStep(0.0, "cruise", 10.0), ActionStep(1.0, "turn_left"), ActionStep(3.0, "accelerate"),
                            ActionStep(5.0, "brake_to_stop")])
    assert [(t, m.value, v) for t, m, v in script] == [(0.0, "cruise", 10.0), (1.0, "turn_left", 5.0),
                                                       (3.0, "accelerate", 10.0), (5.0, "stop", 0.0)]


def test_kinematic_script_for_data_sources_turns_left(tmp_path) -> None:
    log = integrate_script(to_ego_script([ActionStep(0.0, "cruise", 8.0), ActionStep(1.0, "turn_left", 5.0)]), 10.0, 10.0)
    assert np.degrees(log.poses[-1, 2]) == pytest.approx(90.0, abs=8.0)
    assert log.poses[-1, 1] > 10.0 and (log.steering >= -1e-6).all()
    change = integrate_script(to_ego_script([ActionStep(0.0, "cruise", 10.0), ActionStep(1.0, "lane_change_right")]),
                              6.0, 10.0)
    assert change.poses[-1, 1] == pytest.approx(-3.5, abs=0.3) and abs(change.poses[-1, 2]) < 0.05
    # A file source with that script: the plan carries the lane change.
    from PIL import Image

    paths = []
    for i in range(2):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (128, 64), (40 * i, 90, 120)).save(paths[-1])
    from worldmodel.rollout.scenario import FilesSource

    scenario = Scenario("files", tmp_path / "s.yaml", FilesSource(tuple(paths)),
                        (ActionStep(0.0, "cruise", 10.0), ActionStep(0.5, "lane_change_right")), horizon_s=3.0)
    schedule = ChunkSchedule.for_horizon(8, 1, 3, 30)
    job = files_job(scenario, scenario.source, RIG, schedule, 1, 30)
    assert job.reference.shape == (1, 1, 32, 64, 3) and job.truth is None
    assert job.front is None  # images come without a calibration, so no motion is measured in the video
    assert "lane_change_right" in {row["command"] for row in chunk_summary(job.plan)}
    assert isinstance(DatasetSource, type)
