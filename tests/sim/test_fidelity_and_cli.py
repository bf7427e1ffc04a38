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
from worldmodel.eval.ssim import ssim
from worldmodel.sim import fidelity
from worldmodel.sim.policies import PolicyError
from worldmodel.sim.run import simulate
from worldmodel.viz import read_video


def _cfg(export, run_dir, *overrides):
    return compose_config("sim", [f"checkpoint={export}", f"run_dir={run_dir}", "device=cpu", "progress=false",
                                  *overrides])


def _psnr_db(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR of uint8 frames (..., H, W, 3) per leading index: 10 log10(255^2 / MSE)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean(axis=(-3, -2, -1))
    return 10.0 * np.log10(255.0 ** 2 / mse)


def test_fidelity_command_writes_its_table(sim_export, tmp_path, monkeypatch):
    pairs = []
    drive = fidelity.drive_pair
    monkeypatch.setattr(fidelity, "drive_pair", lambda *a, **k: pairs.append(drive(*a, **k)) or pairs[-1])
    cfg = _cfg(sim_export, tmp_path, "episodes=1", "horizon_s=2", "fidelity.enabled=true", "fidelity.episodes=2")
    result = simulate(cfg)
    assert len(result.episodes) == 1 and result.episodes[0]["steps"] == 4
    assert read_video(result.recorded[0] / "generated.mp4").shape[0] == 21
    folder = tmp_path / "fidelity"
    data = json.loads((folder / "fidelity.json").read_text())
    rows = data["per_second"]
    assert [r["second"] for r in rows] == [1, 2] and all(r["frames"] == 10 for r in rows)
    # Recomputed from the two episodes' frames: per frame the mean over views of the PSNR, per second the mean over
    # its 10 frames (second j: frames 10j + 1 .. 10j + 10 after the reference), then over the episodes.
    assert len(pairs) == 2
    k = pairs[0].num_reference
    for j, row in enumerate(rows):
        window = slice(k + 10 * j, k + 10 * (j + 1))
        model = np.mean([_psnr_db(p.generated[window], p.truth[window]).mean(axis=1).mean() for p in pairs])
        copy = np.mean([_psnr_db(np.broadcast_to(p.truth[k - 1], p.truth[window].shape), p.truth[window])
                        .mean(axis=1).mean() for p in pairs])
        assert row["psnr"] == pytest.approx(model, abs=1e-4) and row["psnr_copy_last_frame"] == pytest.approx(
            copy, abs=1e-4)
        expected_ssim = np.mean([ssim(p.generated[window], p.truth[window]).mean() for p in pairs])
        assert row["ssim"] == pytest.approx(expected_ssim, abs=1e-4)  # SSIM itself: tests/eval/test_ssim_values.py
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
