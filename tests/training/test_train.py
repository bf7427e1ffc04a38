"""Training end to end: fast_dev_run of every experiment, a short run's outputs, one-batch overfit."""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_RUN
from tests.data.nuscenes_fixture import FakeScene, write_nuscenes
from tests.training.one_step import check_one_step, record_training
from tests.training.test_data_configs_cli import _opendv as write_opendv
from worldmodel.checkpoint import load_world_model
from worldmodel.config import CONF_DIR, compose_config
from worldmodel.training.resume import ResumeError
from worldmodel.training.train import build_module, train
from worldmodel.viz.video import read_video

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def _test_sized(experiment: str) -> list[str]:
    """Paper-size experiments run here with the tiny preset of the same layout, pixel codec, CPU;
    in-memory pools hold a handful of clips."""
    cfg = compose_config("train", [f"experiment={experiment}"])
    pool = ["data.train.num_clips=4"] if cfg.data.train._target_.endswith("ClipPool") else []
    if cfg.model.num_layers <= 4:
        return pool
    tiny = "tiny_mview" if cfg.model.num_views > 1 else "tiny"
    return [f"model={tiny}", "codec=dct", "trainer=cpu", "data.clip.num_frames=" + str(min(cfg.data.clip.num_frames, 4)),
            "gradient_checkpointing=false", *pool]


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory) -> dict[str, str]:
    """Tiny nuScenes (six cameras) and OpenDV-YouTube trees in the real formats, for the sd3_stage* recipes."""
    root = tmp_path_factory.mktemp("paper_data")
    write_nuscenes(root / "nuscenes", [FakeScene(name, seconds=1.0) for name in ("scene-0001", "scene-0003")])
    write_opendv(root / "opendv")
    return {"NUSCENES_ROOT": str(root / "nuscenes"), "OPENDV_ROOT": str(root / "opendv")}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_fast_dev_run_of_every_experiment(experiment: str, tmp_path: Path, paper_data: dict[str, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name, folder in paper_data.items():
        monkeypatch.setenv(name, folder)
    cfg = compose_config("train", [f"experiment={experiment}", "debug=fast_dev_run", "data.clip.size=[32,64]",
                                   *_test_sized(experiment), f"run_dir={tmp_path}"])
    recording = record_training(monkeypatch)
    result = train(cfg)
    # One step, its loss that of the recorded batch, its update one AdamW step of the trainable weights, the EMA
    # one warm-up update (tests/training/one_step.py).
    check_one_step(recording, result, cfg)
    # fast_dev_run writes no export, log or sample (conf/debug/fast_dev_run.yaml); for checkpoints see below.
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["checkpoints"])


def test_fast_dev_run_writes_no_checkpoint(tmp_path: Path) -> None:
    """conf/debug/fast_dev_run.yaml: "no checkpoints or logs". A last.ckpt of a one-batch debug run would be what a
    later ckpt_path=last resumes from."""
    cfg = compose_config("train", [*TINY_RUN, "debug=fast_dev_run", f"run_dir={tmp_path}"])
    result = train(cfg)
    assert result.global_step == 1
    assert result.last_checkpoint is None and not (tmp_path / "checkpoints").exists()


def test_short_run_writes_checkpoint_export_logs_and_samples(trained_run) -> None:
    run_dir = trained_run.run_dir
    assert trained_run.last_checkpoint is not None and trained_run.last_checkpoint.is_file()
    assert trained_run.last_checkpoint.name == "last.ckpt" and trained_run.global_step == 2
    assert sorted(str(p.relative_to(run_dir / "export")) for p in (run_dir / "export").rglob("*")) == [
        "model", "model/config.json", "model/diffusion_pytorch_model.safetensors", "worldmodel.json"]
    # Training metrics are logged every 10 steps (more than this run has); the one validation, at the end of step 2,
    # is Lightning's row of step index 1, with the value the run returned.
    with open(run_dir / "logs" / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["epoch"], r["step"]) for r in rows] == [("0", "1")] and set(rows[0]) == {"epoch", "step", "val/loss"}
    assert float(rows[0]["val/loss"]) == pytest.approx(trained_run.metrics["val/loss"], rel=1e-6)
    assert any(p.name.startswith("events.out.tfevents") for p in (run_dir / "logs" / "tensorboard").iterdir())
    # sample_videos fires at step 2 (every_n_train_steps=2) with num_clips=1: one video and its contact sheet.
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step0000002.png", "step0000002_clip0.mp4"]
    video = read_video(run_dir / "samples" / "step0000002_clip0.mp4")
    assert video.shape[0] == 4  # num_frames of TINY_RUN
    assert not list(run_dir.glob("**/.*tmp*")), "a temporary file was left behind"


def test_export_and_ckpt_load_the_same_ema_weights(trained_run) -> None:
    from_export = load_world_model(trained_run.export_dir)
    from_ckpt = load_world_model(trained_run.last_checkpoint)
    assert from_export.step == from_ckpt.step == 2
    for (name, a), (_, b) in zip(from_export.model.state_dict().items(), from_ckpt.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_resume_continues_from_the_checkpoint(trained_run, tmp_path: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, "trainer.max_steps=3", f"run_dir={tmp_path}",
                                   f"ckpt_path={trained_run.last_checkpoint}"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(cfg)
    assert load_world_model(result.export_dir).step == 3
    # The data module resumes mid-epoch itself: Lightning's "not resumable" warning would mislead.
    assert not [w for w in caught if "resuming from a checkpoint that ended before the epoch" in str(w.message)]
    # The frozen codec and EMA shadow are in eval mode on purpose; Lightning's pytree deprecation is its own.
    assert not [w for w in caught if "in eval mode at the start of training" in str(w.message)]
    assert not [w for w in caught if "LeafSpec" in str(w.message)]


def test_one_batch_overfit_loss_falls_clearly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = compose_config("train", [*TINY_RUN, f"run_dir={tmp_path}", "optim.lr=2e-3", "optim.warmup_steps=1"])
    module = build_module(cfg, run_config={})
    from hydra.utils import instantiate

    data = instantiate(cfg.data, _convert_="all")
    batch = next(iter(data.train_dataloader()))
    optimizer = module.configure_optimizers()["optimizer"]
    # Fixed noise and time per step isolate fitting from the objective's sampling noise.
    losses = []
    for step in range(60):
        generator = torch.Generator().manual_seed(0)
        loss, _ = module._loss(module.model, batch, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], f"loss went {losses[0]:.4f} -> {losses[-1]:.4f}"


def test_codec_and_model_channel_mismatch_is_named(tmp_path: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, f"run_dir={tmp_path}", "codec=pixel"])
    with pytest.raises(ValueError, match="latent channels"):
        build_module(cfg, run_config={})


def test_ckpt_path_last_without_checkpoint_says_so(tmp_path: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, f"run_dir={tmp_path}", "ckpt_path=last"])
    with pytest.raises(ResumeError, match="last.ckpt"):
        train(cfg)


def test_a_time_budget_stops_the_run_with_its_checkpoint_and_export_of_the_last_step(tmp_path: Path) -> None:
    """`trainer.max_time` (make demo's budget): the run stops after its first step past the budget, and the export
    and last.ckpt both hold that step, also when it falls between two checkpoint steps."""
    overrides = [o for o in TINY_RUN if not o.startswith("trainer.max_steps")]
    cfg = compose_config("train", [*overrides, "trainer.max_steps=1000", "trainer.max_time=00:00:00:01",
                                   "callbacks.checkpoint.every_n_train_steps=1000", f"run_dir={tmp_path}"])
    result = train(cfg)
    assert result.time_limited_at_step is not None and 1 <= result.time_limited_at_step < 1000
    assert result.global_step == result.time_limited_at_step
    assert load_world_model(result.export_dir).step == result.time_limited_at_step
    assert load_world_model(result.last_checkpoint).step == result.time_limited_at_step
    # A run that reaches max_steps inside its budget is not reported as cut short.
    cfg = compose_config("train", [*TINY_RUN, "trainer.max_time=00:01:00:00", f"run_dir={tmp_path / 'full'}"])
    full = train(cfg)
    assert full.time_limited_at_step is None and full.global_step == 2


def test_last_checkpoint_holds_the_final_step_between_checkpoint_steps(tmp_path: Path) -> None:
    overrides = [o for o in TINY_RUN if not o.startswith("trainer.max_steps")]
    cfg = compose_config("train", [*overrides, "trainer.max_steps=3", "callbacks.checkpoint.every_n_train_steps=2",
                                   f"run_dir={tmp_path}"])
    result = train(cfg)
    assert load_world_model(result.last_checkpoint).step == load_world_model(result.export_dir).step == 3
    assert (tmp_path / "checkpoints" / "step0000002.ckpt").is_file()  # the periodic checkpoints stay as they were
