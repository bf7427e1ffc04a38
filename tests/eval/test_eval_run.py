"""`evaluate` end to end on a tiny checkpoint: numbers checked against independent computations, resume, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import worldmodel.eval.run as eval_run
from worldmodel.checkpoint import load_world_model
from worldmodel.config import compose_config
from worldmodel.eval.frechet import FID
from worldmodel.eval.protocol import ProtocolError
from worldmodel.eval.psnr import psnr
from worldmodel.eval.run import evaluate
from worldmodel.eval.ssim import ssim
from worldmodel.eval.state import EvalStateError
from worldmodel.rollout.run import held_out_dataset
from worldmodel.viz import write_video


def _cfg(export: Path, run_dir: Path, *overrides: str):
    return compose_config("eval", [f"checkpoint={export}", f"run_dir={run_dir}", "progress=false",
                                   "protocol.num_videos=3", "protocol.num_frames=23", *overrides])


def _truth_clips(export: Path, count: int, frames: int) -> list[np.ndarray]:
    """The held-out clips the synthetic protocol reads, straight from the reader (actions look 2 s further)."""
    dataset = held_out_dataset(load_world_model(export), "test", frames + 20, count)
    return [np.asarray(dataset[i]["frames"])[:frames] for i in range(count)]


def test_synthetic_protocol_scores_model_baseline_and_action_following(tiny_eval_export, tmp_path) -> None:
    result = evaluate(_cfg(tiny_eval_export, tmp_path, "protocol.metrics=[psnr,ssim,action_following]",
                           "batch_size=2", "write_videos=2"))
    m = result.metrics
    assert m["videos"] == 3
    assert m["protocol"]["resolved"]["clip_indices"] == [0, 1, 2]
    assert m["protocol"]["resolved"]["predicted_frames"] == 22
    # The copy baseline is fully determined by the data: recompute it from the reader.
    truths = _truth_clips(tiny_eval_export, 3, 23)
    expected = np.mean([psnr(np.repeat(t[:1], 22, axis=0), t[1:]).mean(axis=1) for t in truths], axis=0)
    assert np.allclose(m["psnr_curves"]["copy_last_frame_per_frame"], expected, atol=1e-3)
    assert len(m["ssim_curves"]["model_per_frame"]) == 22
    # SSIM of the same baseline (the function itself has golden tests in test_ssim_values.py); each video's
    # per-frame values are rounded to 4 digits before the mean, hence the tolerance.
    expected_ssim = np.mean([ssim(np.repeat(t[:1], 22, axis=0), t[1:]).mean(axis=1) for t in truths], axis=0)
    assert np.allclose(m["ssim_curves"]["copy_last_frame_per_frame"], expected_ssim, atol=1e-3)
    assert m["ssim_copy_last_frame"] == pytest.approx(float(expected_ssim.mean()), abs=1e-3)
    assert set(m["action_following"]) == {"model", "ground_truth"}
    assert m["action_following"]["ground_truth"]["videos_scored"] == 3
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["psnr"] == m["psnr"] and on_disk["protocol"]["name"] == "synthetic"
    page = result.report.read_text()
    assert 'id="curves-plot"' in page and page.count("<video") == 2
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["clip00000.mp4", "clip00001.mp4"]


def test_fid_and_fvd_per_horizon_segment_with_floor(tiny_eval_export, tmp_path) -> None:
    result = evaluate(_cfg(tiny_eval_export, tmp_path, "protocol.metrics=[fid,fvd]", "protocol.num_frames=13",
                           "protocol.horizon_step_s=0.6", "write_videos=0"))
    m = result.metrics
    assert list(m["fid_per_segment"]) == ["all", "0-0.6s", "0.6-1.2s"]
    assert m["fid_per_segment"]["all"]["samples"] == 3 * 12
    assert m["fid_per_segment"]["0-0.6s"]["samples"] == 3 * 6
    assert list(m["fvd_per_segment"]) == ["all", "0-0.6s", "0.6-1.2s"]
    assert m["fvd_per_segment"]["all"]["samples"] == 3
    assert m["fid_real_vs_real_samples"] == [24, 12]  # videos 0 and 2 against video 1
    # The streaming statistics give torchmetrics' FID on the same frames (an independent path).
    truths = _truth_clips(tiny_eval_export, 3, 13)
    reference = FID()
    for t in truths:
        real = torch.from_numpy(t[1:, 0]).permute(0, 3, 1, 2)
        reference.update(real, real=True)
        reference.update(torch.from_numpy(np.repeat(t[:1, 0], 12, axis=0)).permute(0, 3, 1, 2), real=False)
    assert m["fid_copy_last_frame"] == pytest.approx(float(reference.compute()), rel=1e-4)
    assert m["fid"] > 0 and m["fvd"] > 0


def test_interrupted_run_resumes_to_the_uninterrupted_numbers(tiny_eval_export, tmp_path, monkeypatch) -> None:
    overrides = ("protocol.metrics=[psnr,ssim]", "write_videos=0", "save_every_batches=1")
    whole = evaluate(_cfg(tiny_eval_export, tmp_path / "whole", *overrides, "batch_size=3")).metrics

    calls = []
    real_generate = eval_run.generate_batch

    def failing_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # a preemption in the middle of the third video
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(eval_run, "generate_batch", failing_after_two)
    with pytest.raises(KeyboardInterrupt):
        evaluate(_cfg(tiny_eval_export, tmp_path / "cut", *overrides, "batch_size=1"))
    assert not (tmp_path / "cut" / "metrics.json").exists()
    calls.clear()
    monkeypatch.setattr(eval_run, "generate_batch", lambda *a, **k: (calls.append(1), real_generate(*a, **k))[1])
    resumed = evaluate(_cfg(tiny_eval_export, tmp_path / "cut", *overrides, "batch_size=1")).metrics
    assert len(calls) == 1  # only the third video was generated again
    for key in ("psnr", "ssim", "psnr_copy_last_frame"):
        assert resumed[key] == pytest.approx(whole[key], abs=1e-3), key
    assert np.allclose(resumed["psnr_curves"]["model_per_frame"], whole["psnr_curves"]["model_per_frame"], atol=1e-3)


def test_a_run_folder_of_another_evaluation_is_refused_and_kept(tiny_eval_export, tmp_path) -> None:
    evaluate(_cfg(tiny_eval_export, tmp_path, "protocol.metrics=[psnr]", "write_videos=0"))
    before = (tmp_path / "metrics.json").read_bytes()
    with pytest.raises(EvalStateError, match="new run_dir"):
        evaluate(_cfg(tiny_eval_export, tmp_path, "protocol.metrics=[psnr]", "write_videos=0", "protocol.seed=7"))
    with pytest.raises(EvalStateError, match="resume=false"):
        evaluate(_cfg(tiny_eval_export, tmp_path, "protocol.metrics=[psnr]", "write_videos=0", "resume=false"))
    assert (tmp_path / "metrics.json").read_bytes() == before


def test_camera_count_mismatch_names_the_fix(tiny_eval_export, tmp_path) -> None:
    dataset = "protocol.dataset={_target_:worldmodel.data.synthetic.SyntheticDriving,views:rig6,num_clips:3}"
    with pytest.raises(ProtocolError, match="6 camera"):
        evaluate(_cfg(tiny_eval_export, tmp_path, "protocol.metrics=[psnr]", dataset))


def test_zero_shot_on_a_folder_of_videos(tiny_eval_export, tmp_path) -> None:
    root = tmp_path / "dashcam"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        base = rng.integers(0, 255, size=(1, 48, 96, 3))
        frames = np.clip(base + np.arange(30)[:, None, None, None] * 3, 0, 255).astype(np.uint8)
        write_video(root / f"{name}.mp4", frames, fps=10.0)
    result = evaluate(_cfg(tiny_eval_export, tmp_path / "run", "protocol=videos", f"protocol.dataset.root={root}",
                           "protocol.metrics=[psnr,ssim]", "protocol.num_videos=null", "protocol.num_frames=13",
                           "write_videos=1"))
    m = result.metrics
    assert m["videos"] == 2 and m["protocol"]["use_actions"] is False
    assert m["protocol"]["resolved"]["size"] == [32, 64]
    assert m["psnr_copy_last_frame"] > 10


def test_shards_merge_into_the_single_run_numbers(tiny_eval_export, tmp_path) -> None:
    overrides = ("protocol.metrics=[fid,psnr]", "protocol.num_frames=9", "write_videos=0")
    single = evaluate(_cfg(tiny_eval_export, tmp_path / "single", *overrides)).metrics
    first = evaluate(_cfg(tiny_eval_export, tmp_path / "sharded", *overrides, "shard.index=1", "shard.count=2"))
    assert first.report is None and not (tmp_path / "sharded" / "metrics.json").exists()
    merged = evaluate(_cfg(tiny_eval_export, tmp_path / "sharded", *overrides, "shard.index=0", "shard.count=2"))
    assert merged.report is not None
    # Inception runs on other batches in the shards; float32 convolutions then differ in the last bits, which
    # FID's difference of large traces lifts to a few parts per million (2e-6 seen on an AMD EPYC VM).
    for key, rel in (("fid", 1e-5), ("fid_copy_last_frame", 1e-5), ("psnr", 1e-6), ("psnr_copy_last_frame", 1e-6)):
        assert merged.metrics[key] == pytest.approx(single[key], rel=rel), key
    assert merged.metrics["fid_real_vs_real_samples"] == single["fid_real_vs_real_samples"]
