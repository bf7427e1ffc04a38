"""Scenario files: the library validates without data, and malformed files name file, field and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from worldmodel.rollout.scenario import (DatasetSource, FilesSource, ProceduralSource, library_names, load_scenario,
                                         resolve_scenario)
from worldmodel.rollout.yamlmarks import ScenarioError

PROCEDURAL = ["straight_cruise", "accelerate", "brake_to_stop", "left_turn", "right_turn", "lane_change_left",
              "lane_change_right", "long_drive_60s"]


def test_library_has_the_procedural_scenarios_and_all_validate() -> None:
    names = library_names()
    assert set(PROCEDURAL) <= set(names)
    kinds = {type(load_scenario(resolve_scenario(n)).source) for n in names}
    assert {ProceduralSource, DatasetSource, FilesSource} <= kinds  # dataset examples validate without data
    assert load_scenario(resolve_scenario("long_drive_60s")).horizon_s == 60.0
    assert load_scenario(resolve_scenario("nuscenes_recorded")).actions is None  # follow: recorded


def test_unknown_name_lists_the_library() -> None:
    with pytest.raises(ScenarioError, match="left_turn"):
        resolve_scenario("no_such_scenario")


GOOD = """\
source:
  procedural: {seed: 3}
horizon_s: 4.0
actions:
  - {at: 0.0, do: cruise, speed: 10}
  - {at: 2.0, do: turn_left}
"""


@pytest.mark.parametrize("edit, field, line, words", [
    (("horizon_s: 4.0", "horizon: 4.0"), "horizon", 3, "unknown key"),
    (("do: turn_left", "do: turn_lft"), "actions[1].do", 6, "turn_lft"),
    (("speed: 10", "speed: fast"), "actions[0].speed", 5, "expected a number"),
    (("seed: 3", "seed: 3.5"), "source.procedural.seed", 2, "integer"),
    (("{at: 2.0,", "{at: 0.0,"), "actions[1].at", 6, "increase"),
    (("procedural: {seed: 3}", "procedural: {seed: 3, sun: up}"), "source.procedural.sun", 2, "unknown key"),
    (("  - {at: 0.0, do: cruise, speed: 10}\n", "  - {at: 0.0, do: cruise}\n"), "actions[0].speed", 5, "starting"),
])
def test_malformed_scenario_names_file_field_and_line(tmp_path: Path, edit, field, line, words) -> None:
    path = tmp_path / "bad.yaml"
    assert edit[0] in GOOD
    path.write_text(GOOD.replace(edit[0], edit[1]))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert (err.field, err.line) == (field, line), str(err)
    assert str(path) in str(err) and f":{line}:" in str(err) and field in str(err) and words in str(err)


def test_yaml_syntax_errors_and_duplicates_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(GOOD + "actions: []\n")
    with pytest.raises(ScenarioError, match=r"dup.yaml:7: .*duplicate key 'actions'"):
        load_scenario(path)
    path.write_text("source: [\n")
    with pytest.raises(ScenarioError, match=r"dup.yaml:2"):
        load_scenario(path)


def test_follow_recorded_needs_a_dataset(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("source: {procedural: {seed: 1}}\nactions: {follow: recorded}\n")
    with pytest.raises(ScenarioError, match=r"f.yaml:2: field 'actions.follow'"):
        load_scenario(path)


def test_cli_reports_a_bad_scenario_in_one_line(tiny_export: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("do: turn_left", "do: fly"))
    out = subprocess.run([str(Path(sys.executable).parent / "worldmodel-rollout"), f"checkpoint={tiny_export}",
                          f"scenario={bad}", f"run_dir={tmp_path / 'run'}", "device=cpu"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert f"{bad}:6: field 'actions[1].do'" in out.stderr
