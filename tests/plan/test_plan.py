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


def test_sampling_with_bf16_weights_halves_the_networks_weights_only() -> None:
    from hydra.utils import instantiate

    from worldmodel.plan.fake_step import measure_sampling

    cfg = compose_config("train", RUN)
    model = instantiate(cfg.model, _convert_="all")
    tensors = [*model.parameters(), *(b for b in model.buffers() if b.is_floating_point())]
    network = sum(t.numel() * 4 for t in tensors)
    mixed, true = measure_sampling(cfg, "bf16"), measure_sampling(cfg, "bf16-true")
    assert mixed.precision == "bfloat16 autocast, float32 weights"
    assert true.precision == "bfloat16 autocast, bfloat16 weights"
    # The network's floating-point parameters and buffers go to 2 bytes each; the codec keeps float32 weights.
    assert abs((mixed.peak.weights - true.peak.weights) / (network / 2) - 1) < 0.01
    assert true.flops == mixed.flops
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, bf16-true, got 'fp16'"):
        measure_sampling(cfg, "fp16")


@pytest.mark.slow
def test_the_paper_recipe_on_a_16_gb_gpu_is_told_to_sample_with_bf16_weights(tmp_path: Path) -> None:
    # sd3_medium long on an RTX 4080: training does not fit, sampling with float32 weights does not either (17.2
    # GiB), and the plan names the precision that does (10.5 GiB). About a minute on fake tensors.
    out = subprocess.run([str(Path(sys.executable).parent / "worldmodel-plan"), "experiment=sd3_stage2_long",
                          "plan.gpu=RTX-4080"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "fits            NO" in out.stdout and "ema.enabled=false" in out.stdout
    lines = out.stdout.splitlines()
    sampling = next(i for i, line in enumerate(lines) if line.lstrip().startswith("sampling"))
    assert "float32 weights" in lines[sampling]
    assert "precision=bf16-true" in lines[sampling + 1]
    peak = float(lines[sampling + 1].rsplit("peak ", 1)[1].split()[0])
    assert peak < 16 * 0.9


def test_a_checkpoints_sampling_plan_is_its_training_configs(trained_run, tmp_path: Path) -> None:
    from tests.conftest import TINY_RUN
    from worldmodel.plan.fake_step import measure_sampling
    from worldmodel.plan.run import plan_sampling

    def planned(checkpoint: Path, *extra: str):
        return plan_sampling(compose_config("plan", [f"checkpoint={checkpoint}", *extra])).sample

    # What the run config composes, what its export and its .ckpt store: the same network, sampler and chunk.
    composed = measure_sampling(compose_config("train", TINY_RUN))
    export, ckpt = planned(trained_run.export_dir), planned(trained_run.last_checkpoint)
    assert export.flops == ckpt.flops == composed.flops and export.peak == ckpt.peak == composed.peak
    assert (export.steps, export.frames, export.cfg) == (2, 4, True)
    # Rollout's batch and sampler overrides: 4 clips of 10 steps do 20 times the network's work.
    four = planned(trained_run.export_dir, "plan.sample_clips=4", "plan.num_steps=10")
    network = lambda s: s.flops - s.decode_flops  # noqa: E731
    assert four.steps == 10 and four.clips == 4
    assert network(four) == pytest.approx(20 * network(export), rel=1e-9)
    assert planned(trained_run.export_dir, "plan.cfg_scale=1.0").cfg is False


def test_a_checkpoint_plan_builds_only_worldmodels_classes(trained_run, tmp_path: Path) -> None:
    import shutil

    from worldmodel.checkpoint import EXPORT_MARKER
    from worldmodel.plan.run import plan_sampling
    from worldmodel.safe_build import UnsafeConfigError

    tampered = tmp_path / "export"
    shutil.copytree(trained_run.export_dir, tampered)
    info = json.loads((tampered / EXPORT_MARKER).read_text())
    info["config"]["sampler"]["_target_"] = "os.system"
    (tampered / EXPORT_MARKER).write_text(json.dumps(info))
    with pytest.raises(UnsafeConfigError, match="os.system"):
        plan_sampling(compose_config("plan", [f"checkpoint={tampered}"]))


def test_cli_plans_a_checkpoint_and_names_a_missing_one(trained_run, tmp_path: Path) -> None:
    plan_cli = str(Path(sys.executable).parent / "worldmodel-plan")
    out = subprocess.run([plan_cli, f"checkpoint={trained_run.export_dir}", "plan.gpu=RTX-4080"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"sampling {trained_run.export_dir}" in out.stdout and "fits            yes" in out.stdout
    missing = subprocess.run([plan_cli, f"checkpoint={tmp_path / 'nothing'}"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert missing.returncode != 0
    assert f"checkpoint {tmp_path / 'nothing'} does not exist" in missing.stdout + missing.stderr
    assert not any(p.name != "nothing" for p in tmp_path.iterdir())
