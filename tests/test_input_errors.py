"""Errors a user can act on, before work starts: one line that names the input and the fix, no traceback unless
`--verbose` (or HYDRA_FULL_ERROR=1) asks for it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_RUN
from worldmodel.cli.guard import type_problems
from worldmodel.config import compose_config
from worldmodel.training.resume import ResumeError
from worldmodel.training.train import train

BIN = Path(sys.executable).parent


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, **(env or {})})


def _one_line(out: subprocess.CompletedProcess, prog: str) -> str:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{prog}: "), out.stderr[-3000:]
    return line


def test_a_value_of_the_wrong_type_is_named_before_anything_is_built(tmp_path: Path) -> None:
    out = _run("worldmodel-train", "trainer.max_steps=abc", f"run_dir={tmp_path}/r", cwd=tmp_path)
    line = _one_line(out, "worldmodel-train")
    assert "trainer.max_steps=abc: expected an integer (the default is 1500), got 'abc'" in line
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_verbose_keeps_the_traceback(tmp_path: Path) -> None:
    out = _run("worldmodel-train", "--verbose", "trainer.max_steps=abc", f"run_dir={tmp_path}/r", cwd=tmp_path)
    assert out.returncode != 0 and "OverrideTypeError" in out.stderr
    full = _run("worldmodel-train", "trainer.max_steps=abc", f"run_dir={tmp_path}/q", cwd=tmp_path,
                env={"HYDRA_FULL_ERROR": "1"})
    assert "Traceback" in full.stderr


def test_sim_episodes_abc_is_named_before_the_model_loads(tmp_path: Path) -> None:
    out = _run("worldmodel-sim", f"checkpoint={tmp_path}/missing", "episodes=abc", f"run_dir={tmp_path}/s",
               cwd=tmp_path)
    line = _one_line(out, "worldmodel-sim")
    assert "episodes=abc: expected an integer (the default is 2), got 'abc'" in line


@pytest.mark.parametrize(("override", "expected"), [
    ("trainer.max_steps=1.5", "expected an integer"),
    ("ema.enabled=maybe", "expected true or false"),
    ("optim.lr=fast", "expected a number"),
    ("data.clip.size=64", "expected a list like [a,b]"),
])
def test_type_problems_name_each_kind(override: str, expected: str) -> None:
    defaults = compose_config("train")
    cfg = compose_config("train", [override])
    problems = type_problems(defaults, cfg, [override])
    assert len(problems) == 1 and problems[0].startswith(f"{override}: {expected}"), problems


def test_values_of_the_right_type_and_groups_pass() -> None:
    overrides = ["trainer.max_steps=5", "optim.lr=1", "data.clip.size=[32,64]", "ckpt_path=last", "model=small",
                 "trainer.max_time=00:00:01:00", "+extra=1"]
    assert type_problems(compose_config("train"), compose_config("train", overrides), overrides) == []


def test_an_export_folder_as_ckpt_path_says_which_file_to_pass(trained_run, tmp_path: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, f"run_dir={tmp_path}", f"ckpt_path={trained_run.export_dir}"])
    with pytest.raises(ResumeError, match=r"is an export folder .* resume from its run's "
                                          r"<run_dir>/checkpoints/last.ckpt"):
        train(cfg)
    out = _run("worldmodel-train", f"run_dir={tmp_path}/r", f"ckpt_path={trained_run.export_dir}", cwd=tmp_path)
    assert f"ckpt_path={trained_run.export_dir} is an export folder" in _one_line(out, "worldmodel-train")


def test_a_missing_ckpt_path_is_named_before_data_and_model(tmp_path: Path) -> None:
    out = _run("worldmodel-train", f"run_dir={tmp_path}/r", f"ckpt_path={tmp_path}/nope.ckpt", cwd=tmp_path)
    line = _one_line(out, "worldmodel-train")
    assert f"ckpt_path={tmp_path}/nope.ckpt does not exist" in line


def test_a_resume_with_another_model_config_names_the_differing_keys(trained_run, tmp_path: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, f"run_dir={tmp_path}", f"ckpt_path={trained_run.last_checkpoint}",
                                   "model.temporal_window=1", "model.num_layers=3"])
    with pytest.raises(ResumeError) as caught:
        train(cfg)
    message = str(caught.value)
    assert "model.temporal_window: 3 in the checkpoint, 1 now" in message
    assert "model.num_layers: 2 in the checkpoint, 3 now" in message
    assert "Drop those overrides to resume" in message
    assert not (tmp_path / "checkpoints").exists()


def test_a_resume_with_other_run_settings_is_allowed(trained_run, tmp_path: Path) -> None:
    """Only architecture keys must match: more steps, another learning rate or batch size resume."""
    from worldmodel.training.resume import config_differences, stored_run_config

    stored = stored_run_config(trained_run.last_checkpoint)
    current = {**stored, "optim": {**stored["optim"], "lr": 0.5}, "trainer": {"max_steps": 99},
               "model": {**stored["model"], "pretrained_sd3": "/elsewhere"}}
    assert config_differences(stored, current) == []
