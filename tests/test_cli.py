"""The console scripts exist, and bad input gets a one-line answer rather than a traceback."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("script", ["worldmodel-train", "worldmodel-rollout", "worldmodel-eval", "worldmodel-prepare"])
def test_console_script_is_installed(script: str) -> None:
    assert shutil.which(script, path=str(BIN)), f"{script} is not installed in {BIN}"


def test_rollout_of_missing_checkpoint_says_what_to_pass(tmp_path: Path) -> None:
    out = _run("worldmodel-rollout", f"checkpoint={tmp_path}/missing", f"run_dir={tmp_path}/r", cwd=tmp_path)
    assert out.returncode != 0
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_train_with_a_typo_names_the_key(tmp_path: Path) -> None:
    out = _run("worldmodel-train", "trainer.max_stepz=1", cwd=tmp_path)
    assert out.returncode != 0
    assert "max_stepz" in out.stderr


def test_eval_of_missing_checkpoint_says_what_to_pass(tmp_path: Path) -> None:
    out = _run("worldmodel-eval", f"checkpoint={tmp_path}/missing", f"run_dir={tmp_path}/e", cwd=tmp_path)
    assert out.returncode != 0
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_eval_with_an_unknown_protocol_lists_the_choices(tmp_path: Path) -> None:
    out = _run("worldmodel-eval", "checkpoint=x", "protocol=nuscenes_singel", cwd=tmp_path)
    assert out.returncode != 0
    assert "nuscenes_singel" in out.stderr and "nuscenes_single" in out.stderr


def test_eval_synthetic_protocol_end_to_end_on_a_trained_model(trained_run, tmp_path: Path) -> None:
    out = _run("worldmodel-eval", f"checkpoint={trained_run.export_dir}", f"run_dir={tmp_path}/e", "protocol=synthetic",
               "protocol.num_videos=2", "protocol.num_frames=13", "progress=false", "write_videos=1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    for line in ("FID model", "FVD model", "PSNR model", "SSIM model", "copy-last-frame", "real-vs-real floor",
                 "sampling: from pure noise; "):
        assert line in out.stdout, (line, out.stdout)
    run = tmp_path / "e"
    for name in ("metrics.json", "curves.png", "report.html", "eval_state.pt", "videos/clip00000.mp4"):
        assert (run / name).is_file(), name
