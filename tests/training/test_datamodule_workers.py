"""Data loader workers: how they start is a config choice, and a typo in it is named."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.conftest import TINY_RUN
from worldmodel.checkpoint import load_world_model
from worldmodel.config import compose_config
from worldmodel.data.synthetic import SyntheticDriving
from worldmodel.training.datamodule import WorldModelDataModule
from worldmodel.training.train import train


def test_forkserver_workers_train_a_short_run(tmp_path: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, f"run_dir={tmp_path}", "data.num_workers=1",
                                   "data.multiprocessing_context=forkserver"])
    result = train(cfg)
    # Both steps ran on batches from the forkserver worker, and the export holds the weights of the last one.
    assert result.global_step == 2 and math.isfinite(result.metrics["train/loss"])
    assert sorted(str(p.relative_to(result.export_dir)) for p in result.export_dir.rglob("*")) == [
        "model", "model/config.json", "model/diffusion_pytorch_model.safetensors", "worldmodel.json"]
    assert load_world_model(result.export_dir).step == 2


def test_loaders_start_workers_with_the_configured_context() -> None:
    clips = SyntheticDriving(num_clips=4, num_frames=2, size=(32, 64))
    module = WorldModelDataModule(clips, clips, batch_size=2, num_workers=1, multiprocessing_context="spawn")
    assert module.train_dataloader().multiprocessing_context.get_start_method() == "spawn"
    assert module.val_dataloader().multiprocessing_context.get_start_method() == "spawn"
    in_process = WorldModelDataModule(clips, clips, batch_size=2, num_workers=0, multiprocessing_context="spawn")
    assert in_process.train_dataloader().multiprocessing_context is None


def test_a_typo_in_the_worker_start_is_named() -> None:
    clips = SyntheticDriving(num_clips=4, num_frames=2, size=(32, 64))
    with pytest.raises(ValueError, match="data.multiprocessing_context.*forkserver.*'forksever'"):
        WorldModelDataModule(clips, batch_size=2, num_workers=1, multiprocessing_context="forksever")
