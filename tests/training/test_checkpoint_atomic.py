"""Checkpoints are complete or absent; `ckpt_path=last` takes the newest one that loads."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.training import checkpoint_io
from worldmodel.training.checkpoint_io import atomic_torch_save, newest_good_checkpoint
from worldmodel.training.resume import ResumeError, resolve_ckpt_path
from worldmodel.training.train import train

RUN = [*TINY_RUN, "trainer.max_steps=3", "trainer.val_check_interval=3", "callbacks.checkpoint.every_n_train_steps=1",
       "callbacks.sample_videos.every_n_train_steps=0", "callbacks.export.every_n_train_steps=0"]


def test_a_truncated_last_checkpoint_is_skipped_for_the_previous_one(tmp_path: Path, caplog) -> None:
    train(compose_config("train", [*RUN, f"run_dir={tmp_path}"]))
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.ckpt")) == [
        "last.ckpt", "step0000001.ckpt", "step0000002.ckpt", "step0000003.ckpt"]
    # A crash while last.ckpt was written (by a writer that is not atomic): half the bytes, newest time.
    last = folder / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    os.utime(last, (time.time() + 5, time.time() + 5))
    with caplog.at_level(logging.WARNING, logger="worldmodel.training.checkpoint_io"):
        chosen = resolve_ckpt_path("last", tmp_path)
    assert Path(chosen).name == "step0000003.ckpt"
    assert "last.ckpt" in caplog.text and "skipping damaged checkpoint" in caplog.text
    # And the run resumes from it.
    result = train(compose_config("train", [*RUN, f"run_dir={tmp_path}", "trainer.max_steps=4", "ckpt_path=last"]))
    assert torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)["global_step"] == 4


def test_no_loadable_checkpoint_says_so(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 not really")
    assert newest_good_checkpoint(tmp_path / "checkpoints") is None
    with pytest.raises(ResumeError, match="no loadable"):
        resolve_ckpt_path("last", tmp_path)


def test_a_crash_mid_save_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"global_step": 1, "state_dict": {"w": torch.ones(1000)}}, path)
    before = path.read_bytes()

    def crash(obj, f):  # writes part of a checkpoint, then the process "dies"
        f.write(before[:100])
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoint_io.torch, "save", crash)
    with pytest.raises(OSError, match="No space left"):
        atomic_torch_save({"global_step": 2, "state_dict": {"w": torch.zeros(1000)}}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "a temporary file was left behind"
