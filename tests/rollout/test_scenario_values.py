"""Scenario numbers outside what a road vehicle does are refused naming file, line, field, value and range."""
from __future__ import annotations

from pathlib import Path

import pytest

import worldmodel.rollout.scenario as scenario_module
from worldmodel.errors import UserInputError
from worldmodel.rollout import limits
from worldmodel.rollout.scenario import library_names, load_scenario, resolve_scenario
from worldmodel.rollout.script import TURN_RADIUS_M
from worldmodel.rollout.seeds import SeedError, cli_seed
from worldmodel.rollout.yamlmarks import ScenarioError
from worldmodel.sim.policies import PolicyError
from worldmodel.sim.scenarios import as_scenario
from worldmodel.sim.spaces import MAX_SPEED_MPS

PROCEDURAL = """\
source:
  procedural: {seed: 3, lanes: 2, traffic: 1.0}
seed: 0
horizon_s: 4.0
actions:
  - {at: 0.0, do: cruise, speed: 10}
  - {at: 2.0, do: turn_left, speed: 5}
"""
DATASET = """\
source:
  dataset: {name: nuscenes, root: /nowhere, clip: 2}
actions: {follow: recorded}
"""
VIDEO = """\
source:
  video: {path: drive.mp4, start_s: 1.0}
actions:
  - {at: 0.0, do: cruise, speed: 10}
"""


@pytest.mark.parametrize("doc, edit, field, line, words", [
    (PROCEDURAL, ("speed: 10", "speed: 300"), "actions[0].speed", 6, "300 m/s is out of range (allowed 0..70 m/s"),
    (PROCEDURAL, ("speed: 10", "speed: -1"), "actions[0].speed", 6, "-1 m/s is out of range (allowed 0..70 m/s"),
    (PROCEDURAL, ("speed: 5", "speed: 20"), "actions[1].speed", 7, "20 m/s is out of range (allowed 0..9.7 m/s"),
    (PROCEDURAL, ("horizon_s: 4.0", "horizon_s: 0"), "horizon_s", 4, "0 s is out of range (allowed > 0 and <= 600 s"),
    (PROCEDURAL, ("horizon_s: 4.0", "horizon_s: 3600"), "horizon_s", 4, "3600 s is out of range"),
    (PROCEDURAL, ("seed: 0", "seed: -1"), "seed", 3, "-1 is out of range (allowed 0..4294967295"),
    (PROCEDURAL, ("seed: 0", "seed: 4294967296"), "seed", 3, "4294967296 is out of range"),
    (PROCEDURAL, ("{seed: 3,", "{seed: -3,"), "source.procedural.seed", 2, "-3 is out of range"),
    (PROCEDURAL, ("lanes: 2", "lanes: 0"), "source.procedural.lanes", 2, "0 lanes is out of range (allowed 1..6"),
    (PROCEDURAL, ("lanes: 2", "lanes: 12"), "source.procedural.lanes", 2, "12 lanes is out of range"),
    (PROCEDURAL, ("traffic: 1.0", "traffic: 50"), "source.procedural.traffic", 2,
     "50 vehicles per 100 m of lane is out of range (allowed 0..20"),
    (PROCEDURAL, ("{at: 2.0,", "{at: 900,"), "actions[1].at", 7, "900 s is out of range (allowed 0..600 s"),
    (PROCEDURAL, ("{at: 2.0,", "{at: .nan,"), "actions[1].at", 7, "expected a finite number, got nan"),
    (PROCEDURAL, ("speed: 10", "speed: .inf"), "actions[0].speed", 6, "expected a finite number, got inf"),
    (DATASET, ("clip: 2", "clip: -1"), "source.dataset.clip", 2, "-1 is out of range (allowed >= 0"),
    (VIDEO, ("start_s: 1.0", "start_s: -2.5"), "source.video.start_s", 2, "-2.5 s is out of range (allowed >= 0 s"),
])
def test_impossible_value_names_file_line_field_value_and_range(tmp_path: Path, doc, edit, field, line,
                                                               words) -> None:
    path = tmp_path / "bad.yaml"
    assert edit[0] in doc
    path.write_text(doc.replace(edit[0], edit[1], 1))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert (info.value.field, info.value.line) == (field, line), str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: field '{field}': {words}"), str(info.value)
    assert "\n" not in str(info.value)


def test_each_refusal_says_why(tmp_path: Path) -> None:
    path = tmp_path / "fast.yaml"
    path.write_text(PROCEDURAL.replace("speed: 10", "speed: 300"))
    with pytest.raises(ScenarioError, match=r"252 km/h, faster than road vehicles are driven\)$"):
        load_scenario(path)
    path.write_text(PROCEDURAL.replace("speed: 5", "speed: 12"))
    with pytest.raises(ScenarioError,
                       match=r"junction bend of 12 m radius .* \(0\.8 g\), more than a road car.s tyres hold"):
        load_scenario(path)


def test_the_limits_themselves_are_allowed(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(PROCEDURAL.replace("speed: 10", "speed: 70")
                    .replace("speed: 5", f"speed: {limits.TURN_SPEED_MAX_MPS}")
                    .replace("horizon_s: 4.0", "horizon_s: 600").replace("lanes: 2", "lanes: 6")
                    .replace("traffic: 1.0", "traffic: 20").replace("seed: 0", "seed: 4294967295"))
    scenario = load_scenario(path)
    assert [a.speed for a in scenario.actions] == [70.0, limits.TURN_SPEED_MAX_MPS]
    assert (scenario.horizon_s, scenario.seed, scenario.source.lanes) == (600.0, 2**32 - 1, 6)


def test_turn_speed_bound_holds_on_the_tightest_bend_of_both_ego_models() -> None:
    v = limits.TURN_SPEED_MAX_MPS
    assert v**2 / limits.JUNCTION_RADIUS_MIN_M <= limits.LATERAL_ACCEL_MAX_MPS2
    assert (v + 0.1) ** 2 / limits.JUNCTION_RADIUS_MIN_M > limits.LATERAL_ACCEL_MAX_MPS2  # the largest such
    assert TURN_RADIUS_M >= limits.JUNCTION_RADIUS_MIN_M  # the kinematic turn is no tighter than the world's


def test_scenario_docs_list_every_range() -> None:
    docs = scenario_module.__doc__
    for name, limit in limits.FIELDS.items():
        assert limit.describe() in docs, f"{name}: {limit.describe()} missing from worldmodel/rollout/scenario.py"


def test_shipped_library_loads_for_rollout_and_sim() -> None:
    names = library_names()
    assert len(names) >= 13
    for name in names:
        scenario = load_scenario(resolve_scenario(name))
        assert as_scenario(name) == scenario
    assert as_scenario(0).seed == 0 and as_scenario(2**32 - 1).seed == 2**32 - 1


def test_sim_refuses_speeds_past_its_top_speed_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "autobahn.yaml"
    path.write_text(PROCEDURAL.replace("speed: 10", "speed: 50"))
    assert load_scenario(path).actions[0].speed == 50.0  # a rollout may drive it
    assert MAX_SPEED_MPS < 50
    with pytest.raises(ScenarioError, match=rf"autobahn.yaml:6: field 'actions\[0\].speed': 50 m/s is above the "
                                            rf"simulator's top speed of {MAX_SPEED_MPS:g} m/s"):
        as_scenario(str(path))


@pytest.mark.parametrize("value, words", [(-1, "seed=-1: -1 is out of range"), (2**32, "out of range"),
                                          ("abc", "seed='abc' is not an integer"), (1.5, "not an integer"),
                                          (True, "not an integer")])
def test_bad_cli_seed_is_refused(value, words) -> None:
    with pytest.raises(SeedError, match=words):
        cli_seed(value)
    assert cli_seed(None) is None and cli_seed(7) == 7


def test_procedural_int_scenario_seed_is_checked() -> None:
    with pytest.raises(SeedError, match="procedural scenario seed -1: -1 is out of range"):
        as_scenario(-1)


def test_user_errors_keep_value_error_as_a_base() -> None:
    for cls in (ScenarioError, PolicyError, SeedError):
        assert issubclass(cls, UserInputError) and issubclass(cls, ValueError), cls


def test_defaulted_fields_report_the_line_of_their_section(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(DATASET.replace(", clip: 2", ""))
    scenario = load_scenario(path)
    assert scenario.line_of("source.dataset.clip") == 2 and scenario.line_of("actions") == 3
    assert scenario.line_of("source.dataset.root") == 2 and scenario.line_of("no.such[0].field") is None
