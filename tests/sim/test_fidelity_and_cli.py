"""The fidelity command on a tiny checkpoint, and the worldmodel-sim command line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worldmodel.config import compose_config
from worldmodel.sim.policies import PolicyError
from worldmodel.sim.run import simulate
from worldmodel.viz import read_video


def _cfg(export, run_dir, *overrides):
    return compose_config("sim", [f"checkpoint={export}", f"run_dir={run_dir}", "device=cpu", "progress=false",
                                  *overrides])


def test_fidelity_command_writes_its_table(sim_export, tmp_path):
    cfg = _cfg(sim_export, tmp_path, "episodes=1", "horizon_s=2", "fidelity.enabled=true", "fidelity.episodes=2")
    result = simulate(cfg)
    assert len(result.episodes) == 1 and result.episodes[0]["steps"] == 4
    assert read_video(result.recorded[0] / "generated.mp4").shape[0] == 21
    folder = tmp_path / "fidelity"
    data = json.loads((folder / "fidelity.json").read_text())
    rows = data["per_second"]
    assert [r["second"] for r in rows] == [1, 2] and all(r["frames"] == 10 for r in rows)
    for row in rows:
        assert 0.0 < row["psnr"] < 60.0 and -1.0 <= row["ssim"] <= 1.0 and row["psnr_copy_last_frame"] > 0
        assert row["fvd"] is None
    assert "needs at least 16 clips" in data["fvd_note"]
    assert all(e["commanded_state_divergence_m"] < 1e-9 for e in data["episodes"]) and len(data["episodes"]) == 2
    table = (folder / "fidelity.md").read_text()
    assert "| second | PSNR dB |" in table and table.count("\n| ") >= 3
    assert Image.open(folder / "fidelity.png").size[0] > 500
    side = read_video(folder / "episode000" / "side_by_side.mp4")
    assert side.shape[0] == 21


def test_fidelity_needs_a_procedural_scenario(sim_export, tmp_path):
    images = []
    for i in range(2):
        path = tmp_path / f"frame{i}.png"
        Image.fromarray(np.full((32, 64, 3), 90 + i, np.uint8)).save(path)
        images.append(path.name)
    scenario = tmp_path / "photos.yaml"
    scenario.write_text(f"source: {{files: [{', '.join(images)}]}}\nactions: [{{at: 0.0, do: cruise, speed: 8}}]\n")
    cfg = _cfg(sim_export, tmp_path / "run", "episodes=1", "horizon_s=1", f"scenario={scenario}",
               "fidelity.enabled=true")
    with pytest.raises(ValueError, match="is not procedural"):
        simulate(cfg)
    # The world model itself drives from photos fine: the files scenario ran its episode first.
    assert json.loads((tmp_path / "run" / "episodes.json").read_text())["episodes"][0]["steps"] == 2


def test_bad_policy_fails_before_loading_anything(tmp_path):
    cfg = compose_config("sim", ["checkpoint=/nonexistent", f"run_dir={tmp_path}", "policy=no_such_pkg:drive"])
    with pytest.raises(PolicyError, match="cannot import module"):
        simulate(cfg)


def test_cli_reports_a_missing_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "worldmodel.cli.sim", f"checkpoint={tmp_path / 'nope'}",
                           f"run_dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode != 0
    assert "worldmodel-sim: checkpoint" in proc.stderr and "does not exist" in proc.stderr
