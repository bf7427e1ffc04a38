"""`rollout(cfg)` in batch mode on a trained tiny model writes readable videos of the requested length, and metrics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from worldmodel.config import compose_config
from worldmodel.rollout.run import rollout
from worldmodel.viz.video import read_video


def test_rollout_writes_videos_sheets_latents_and_metrics(trained_run, tmp_path: Path) -> None:
    cfg = compose_config("rollout", [f"checkpoint={trained_run.export_dir}", f"run_dir={tmp_path}",
                                     "num_chunks=3", "carry_frames=2", "num_steps=2", "device=cpu"])
    result = rollout(cfg)
    expected_frames = 4 + 2 * (4 - 2)  # chunk of 4, then 2 new frames per later chunk
    generated = read_video(tmp_path / "clip000" / "generated.mp4")
    assert generated.shape[0] == expected_frames
    assert generated.shape[1:3] == (32, 64)
    side = read_video(tmp_path / "clip000" / "side_by_side.mp4")
    assert side.shape[0] == expected_frames and side.shape[2] > 2 * 64 - 1
    assert (tmp_path / "clip001" / "contact_sheet.png").is_file()
    assert (tmp_path / "clip000" / "latents.safetensors").is_file()  # latents now live in each run's folder
    assert (tmp_path / "clip000" / "report.html").is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["psnr_model_per_frame"]) == expected_frames - 1
    assert np.isfinite(metrics["psnr_model"]) and np.isfinite(metrics["psnr_copy_last_frame"])
    # Procedural clips are calibrated and carry trajectories: the warp-last-frame baseline is there too.
    assert len(metrics["psnr_warp_last_frame_per_frame"]) == expected_frames - 1
    assert metrics["psnr_warp_last_frame"] != metrics["psnr_copy_last_frame"]
    assert metrics["protocol"]["clips"] == 2
    assert json.loads((tmp_path / "manifest.json").read_text())["seed"] == 0
    assert result.metrics["runs"]["clip001"]["psnr_model"] == metrics["runs"]["clip001"]["psnr_model"]


def test_rollout_from_lightning_checkpoint(trained_run, tmp_path: Path) -> None:
    cfg = compose_config("rollout", [f"checkpoint={trained_run.last_checkpoint}", f"run_dir={tmp_path}",
                                     "num_chunks=1", "num_steps=1", "clips.num_clips=1", "device=cpu"])
    result = rollout(cfg)
    assert read_video(result.videos[0]).shape[0] == 4


def test_batch_mode_plans_have_recorded_actions_in_every_chunk(trained_run, tmp_path: Path) -> None:
    from worldmodel.checkpoint import load_world_model
    from worldmodel.rollout.jobs import ModelRig
    from worldmodel.rollout.run import clip_jobs

    cfg = compose_config("rollout", [f"checkpoint={trained_run.export_dir}", f"run_dir={tmp_path}",
                                     "num_chunks=3", "carry_frames=2", "clips.num_clips=1"])
    loaded = load_world_model(trained_run.export_dir)
    (schedule, job), = clip_jobs(loaded, cfg, ModelRig.from_run_config(loaded.config))
    assert len(job.plan) == 3
    for values, valid in job.plan:
        # command, trajectory and speed are measured from the procedural world's recorded drive
        assert valid[0, :3].all(), valid
    assert job.num_frames == schedule.total_frames
