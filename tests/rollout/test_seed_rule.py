"""The seed rule of worldmodel-rollout: seed= on the command line, else the scenario's seed:, else 0; recorded."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.rollout.test_rollout_scenarios import _latents, _run
from worldmodel.rollout.seeds import SeedError, resolve_seed, shared_seed

SCENARIO = """\
source:
  procedural: {seed: 3}
horizon_s: 0.8
actions:
  - {at: 0.0, do: cruise, speed: 8}
"""


def test_resolve_seed_rule() -> None:
    assert resolve_seed(7, 5) == (7, "cli") and resolve_seed(0, 5) == (0, "cli")  # seed=0 typed still wins
    assert resolve_seed(None, 5) == (5, "scenario") and resolve_seed(None, None) == (0, "default")
    assert shared_seed([(5, "scenario"), (5, "scenario")]) == {"seed": 5, "seed_source": "scenario"}
    assert shared_seed([(5, "scenario"), (0, "default")]) == {"seed": None, "seed_source": None}


def test_cli_seed_wins_else_the_scenarios_else_0_and_the_manifests_say_so(tiny_export: Path,
                                                                           tmp_path: Path) -> None:
    seeded, unseeded = tmp_path / "seeded.yaml", tmp_path / "unseeded.yaml"
    seeded.write_text(SCENARIO + "seed: 5\n")
    unseeded.write_text(SCENARIO)
    scenarios = f"scenario=[{seeded},{unseeded}]"
    _run(tiny_export, tmp_path / "own", scenarios)
    top = json.loads((tmp_path / "own" / "manifest.json").read_text())
    assert top["runs"]["seeded"]["seed"] == 5 and top["runs"]["seeded"]["seed_source"] == "scenario"
    assert top["runs"]["unseeded"]["seed"] == 0 and top["runs"]["unseeded"]["seed_source"] == "default"
    assert top["seed"] is None and top["seed_source"] is None  # the runs differ: see runs
    run = json.loads((tmp_path / "own" / "seeded" / "manifest.json").read_text())
    assert run["seed"] == 5 and run["scenario"]["seed"] == 5 and run["scenario"]["seed_source"] == "scenario"

    _run(tiny_export, tmp_path / "cli", scenarios, "seed=5")
    top = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert (top["seed"], top["seed_source"]) == (5, "cli")
    for name in ("seeded", "unseeded"):
        assert (top["runs"][name]["seed"], top["runs"][name]["seed_source"]) == (5, "cli"), name
        run = json.loads((tmp_path / "cli" / name / "manifest.json").read_text())
        assert run["seed"] == 5 and run["scenario"]["seed_source"] == "cli"

    # The recorded seed is the one the noise came from: the same scene with seed 5 from the file or the
    # command line gives the same video, with the default seed 0 another.
    own5 = _latents(tmp_path / "own" / "seeded" / "latents.safetensors")
    cli5 = _latents(tmp_path / "cli" / "unseeded" / "latents.safetensors")
    own0 = _latents(tmp_path / "own" / "unseeded" / "latents.safetensors")
    np.testing.assert_array_equal(own5, cli5)
    assert not np.allclose(own5[1:], own0[1:])


def test_batch_mode_counts_up_from_the_cli_seed(tiny_export: Path, tmp_path: Path) -> None:
    _run(tiny_export, tmp_path, "clips.num_clips=2", "num_chunks=1", "seed=3")
    top = json.loads((tmp_path / "manifest.json").read_text())
    assert (top["seed"], top["seed_source"]) == (3, "cli")
    assert [(r["seed"], r["seed_source"]) for r in top["runs"].values()] == [(3, "cli"), (4, "cli")]


def test_bad_cli_seed_fails_before_the_checkpoint_loads(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match=r"seed=-4: -4 is out of range \(allowed 0\.\.4294967295"):
        _run(tmp_path / "no_checkpoint", tmp_path, "scenario=left_turn", "seed=-4")
