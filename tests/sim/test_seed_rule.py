"""The seed rule of worldmodel-sim, as in rollout: seed= on the command line, else the scenario's, else 0."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from worldmodel.config import compose_config
from worldmodel.rollout.seeds import SeedError
from worldmodel.sim.run import simulate

SCENARIO = """\
source:
  procedural: {seed: 3}
seed: 5
actions:
  - {at: 0.0, do: cruise, speed: 8}
"""


def _episodes(export: Path, run_dir: Path, *overrides: str) -> dict:
    cfg = compose_config("sim", [f"checkpoint={export}", f"run_dir={run_dir}", "device=cpu", "progress=false",
                                 "record=false", "horizon_s=0.5", "episodes=2", *overrides])
    simulate(cfg)
    return json.loads((run_dir / "episodes.json").read_text())


@pytest.mark.parametrize("with_scenario, cli, seed, source", [
    (True, None, 5, "scenario"), (True, 7, 7, "cli"), (False, None, 0, "default"), (False, 2, 2, "cli")])
def test_sim_seed_rule_and_episodes_json(sim_export: Path, tmp_path: Path, with_scenario, cli, seed,
                                         source) -> None:
    path = tmp_path / "seeded.yaml"
    path.write_text(SCENARIO)
    overrides = ([f"scenario={path}"] if with_scenario else []) + ([f"seed={cli}"] if cli is not None else [])
    data = _episodes(sim_export, tmp_path / "run", *overrides)
    assert (data["seed"], data["seed_source"]) == (seed, source)
    assert [(e["seed"], e["seed_source"]) for e in data["episodes"]] == [(seed, source), (seed + 1, source)]
    if not with_scenario:  # the procedural world follows the same seed
        assert [e["scenario"] for e in data["episodes"]] == [str(seed), str(seed + 1)]


def test_bad_sim_seed_fails_before_the_checkpoint_loads(tmp_path: Path) -> None:
    cfg = compose_config("sim", ["checkpoint=/nonexistent", f"run_dir={tmp_path}", "seed=abc"])
    with pytest.raises(SeedError, match=r"seed='abc' is not an integer"):
        simulate(cfg)
