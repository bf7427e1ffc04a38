"""worldmodel-plan on fake tensors agrees with a real CPU step's memory, and the CLI prints a verdict."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plan.analytic_flops import analytic_training_step_flops
from worldmodel.config import CONF_DIR, compose_config
from worldmodel.plan.estimate import per_rank_memory
from worldmodel.plan.fake_step import measure_training_step
from worldmodel.plan.gpus import gpu_named

HERE = Path(__file__).resolve().parent
RUN = ["experiment=quickstart_mr", "ema.enabled=false"]


def test_fake_step_peak_is_within_20_percent_of_a_real_cpu_step() -> None:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONPATH": str(HERE.parents[1])}
    real = int(subprocess.run([sys.executable, str(HERE / "real_step_peak.py"), *RUN], env=env, check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1])
    planned = measure_training_step(compose_config("train", RUN))
    # The real figure excludes the weights, built before its baseline.
    assert abs((planned.peak.total - planned.peak.weights) / real - 1) < 0.2
    assert planned.passes == 2 and planned.flops > 0


@pytest.mark.parametrize("extra", [[], ["gradient_checkpointing=true"], ["experiment=quickstart_mview"]],
                         ids=["quickstart_mr", "checkpointed", "quickstart_mview"])
def test_planned_flops_are_within_5_percent_of_an_analytic_count(extra: list[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = compose_config("train", RUN + extra)
    planned = measure_training_step(cfg).flops
    analytic = analytic_training_step_flops(cfg, monkeypatch)
    assert abs(planned / analytic - 1) < 0.05, (planned, analytic)


def test_the_fsdp_split_agrees_with_fsdp2s_memory_tracker_on_a_fake_process_group() -> None:
    # `small` (80 M parameters) at a short clip, so that weights and AdamW state are a real share of the peak.
    run = ["experiment=quickstart_mr", "ema.enabled=false", "model=small", "data.batch_size=1",
           "data.clip.num_frames=4"]
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    out = subprocess.run([sys.executable, str(HERE / "fsdp2_peak.py"), "8", *run], env=env, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    tracked = json.loads(out.strip().splitlines()[-1])
    planned = per_rank_memory(measure_training_step(compose_config("train", run)), "fsdp", 8)
    assert abs(planned.total / tracked["Total"] - 1) < 0.1, (planned, tracked)
    state = ("SHARDED_PARAM", "UNSHARDED_PARAM", "BUFFER", "ALL_GATHER", "OPT")
    assert abs((planned.memory.weights + planned.memory.optimizer) / sum(tracked[k] for k in state) - 1) < 0.1


def test_fsdp_divides_the_sharded_state() -> None:
    step = measure_training_step(compose_config("train", RUN))
    eight = per_rank_memory(step, "fsdp", 8)
    assert eight.memory.optimizer == step.peak.optimizer // 8
    assert eight.memory.activations == step.peak.activations
    with pytest.raises(ValueError, match="plan.gpu"):
        gpu_named("B300")


def test_cli_prints_the_plan(tmp_path: Path) -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "worldmodel-plan"), "plan.gpu=RTX-4090"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "fits            yes" in out.stdout and "RTX-4090" in out.stdout
    assert not any(tmp_path.iterdir())  # a plan writes nothing
    assert (CONF_DIR / "plan.yaml").is_file()
