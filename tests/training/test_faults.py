"""Faults: a NaN loss stops or skips as configured, unreadable clips are skipped and counted, OOM gives advice."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.data.robust import BadSampleError, SkipBadSamples
from worldmodel.data.videos import VideoFolderClips
from worldmodel.training.faults import BadSampleFractionError, NonFiniteLossError, OutOfMemoryAdvice
from worldmodel.training.train import train

QUIET = ["callbacks.sample_videos.every_n_train_steps=0", "callbacks.export.every_n_train_steps=0",
         "trainer.max_steps=4", "trainer.val_check_interval=4"]


def _with_callback(name: str, **options) -> list[str]:
    return [f"+callbacks.test_hook._target_=tests.training.recorder.{name}",
            *(f"+callbacks.test_hook.{k}={v}" for k, v in options.items())]


# ------------------------------------------------------------------------------------------------
# Non-finite loss
# ------------------------------------------------------------------------------------------------
def test_nan_loss_stops_naming_step_and_batch(tmp_path: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, *QUIET, f"run_dir={tmp_path}", *_with_callback("PoisonLossAtStep", step=2)])
    with pytest.raises(NonFiniteLossError, match=r"global step 2 \(epoch 0, batch 2; clips synthetic-train"):
        train(cfg)


def test_nan_loss_skip_drops_only_that_step(tmp_path: Path) -> None:
    losses = tmp_path / "losses.txt"
    cfg = compose_config("train", [*TINY_RUN, *QUIET, f"run_dir={tmp_path}", "faults.nonfinite_loss=skip",
                                   *_with_callback("PoisonLossAtStep", step=2),
                                   "+callbacks.record._target_=tests.training.recorder.LossRecorder",
                                   f"+callbacks.record.path={losses}"])
    result = train(cfg)
    steps = [line.split() for line in losses.read_text().splitlines()]
    assert [s[1] == "skipped" for s in steps] == [False, False, True, False]
    state = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert state["worldmodel_state"]["skipped_steps"] == 1
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_nan_loss_skip_gives_up_after_max_skipped_steps(tmp_path: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, *QUIET, f"run_dir={tmp_path}", "faults.nonfinite_loss=skip",
                                   "faults.max_skipped_steps=0", *_with_callback("PoisonLossAtStep", step=1)])
    with pytest.raises(NonFiniteLossError, match="max_skipped_steps=0"):
        train(cfg)


# ------------------------------------------------------------------------------------------------
# Unreadable clips
# ------------------------------------------------------------------------------------------------
def _frame_folders(root: Path, scenes: int = 8, frames: int = 4) -> None:
    rng = np.random.default_rng(0)
    for s in range(scenes):
        folder = root / f"scene{s}"
        folder.mkdir(parents=True)
        for i in range(frames):
            Image.fromarray(rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)).save(folder / f"{i:06d}.png")


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])  # a PNG cut inside its first chunk


def test_reader_error_is_real_and_the_wrapper_substitutes_and_counts(tmp_path: Path, caplog) -> None:
    _frame_folders(tmp_path)
    clips = VideoFolderClips(tmp_path, num_frames=4, size=(32, 64))
    assert len(clips) == 8
    _cut(tmp_path / "scene3" / "000002.png")
    with pytest.raises(Exception, match="scene3/000002.png"):
        clips[3]
    robust = SkipBadSamples(clips)
    with caplog.at_level(logging.WARNING, logger="worldmodel.data.robust"):
        clip = robust[3]
    assert clip["meta"]["scene"] == "scene4" and clip["load_failures"] == 1 and robust.failures == 1
    assert "clip 3" in caplog.text and "000002.png" in caplog.text
    assert robust[2]["load_failures"] == 0


def test_every_clip_unreadable_fails_clearly(tmp_path: Path) -> None:
    _frame_folders(tmp_path, scenes=2)
    clips = VideoFolderClips(tmp_path, num_frames=4, size=(32, 64))
    for s in range(2):
        _cut(tmp_path / f"scene{s}" / "000000.png")
    with pytest.raises(BadSampleError, match="2 clips in a row failed"):
        SkipBadSamples(clips)[0]


def _videos_run(root: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["~experiment", "data=videos", f"data.train.root={root}", f"data.val.root={root}", "data.clip.num_frames=4",
            "data.clip.size=[32,64]", "data.batch_size=2", "data.num_workers=0", "trainer=cpu",
            "trainer.enable_progress_bar=false", "trainer.limit_val_batches=1", *QUIET, f"run_dir={run_dir}", *extra]


def test_training_skips_and_counts_a_corrupt_clip(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    _frame_folders(root)
    _cut(root / "scene5" / "000001.png")
    # One epoch of 4 batches reads each of the 8 clips once: exactly one failed load.
    result = train(compose_config("train", _videos_run(root, tmp_path / "run")))
    assert result.metrics["train/bad_samples"] == 1.0
    state = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert state["worldmodel_state"]["bad_samples"] == {"failed": 1, "attempted": 9}


def test_training_fails_past_the_bad_sample_fraction(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    _frame_folders(root)
    for s in (1, 2, 5):
        _cut(root / f"scene{s}" / "000001.png")
    cfg = compose_config("train", _videos_run(root, tmp_path / "run", "faults.max_bad_sample_fraction=0.2",
                                              "faults.min_reads=4"))
    with pytest.raises(BadSampleFractionError, match=r"\d+ of \d+ clip loads failed .*faults.max_bad_sample_fraction=0.2"):
        train(cfg)


# ------------------------------------------------------------------------------------------------
# Out of memory
# ------------------------------------------------------------------------------------------------
def test_out_of_memory_gives_advice(tmp_path: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, *QUIET, f"run_dir={tmp_path}", *_with_callback("OutOfMemoryAtStep", step=1)])
    with pytest.raises(OutOfMemoryAdvice) as info:
        train(cfg)
    message = str(info.value)
    for advice in ("data.batch_size", "gradient_checkpointing=true", "trainer=fsdp", "bf16-mixed",
                   "CUDA out of memory. Tried to allocate 20.00 GiB"):
        assert advice in message
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)
