"""Shared fixtures: small composed configs and a trained-for-a-few-steps tiny world model."""
from __future__ import annotations

import os

# Tests share two cores between xdist workers; more threads per worker only thrash.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# Overrides that keep a full training run to seconds on one core.
TINY_RUN = [
    "data.batch_size=2", "data.num_workers=0", "data.clip.size=[32,64]", "data.clip.num_frames=4",
    "data.val.num_clips=2", "trainer.max_steps=2", "trainer.val_check_interval=2",
    "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
    "trainer.devices=1", "callbacks.sample_videos.every_n_train_steps=2", "callbacks.sample_videos.num_clips=1",
    "sampler.num_steps=2", "data.train.num_clips=8", "data.train.workers=1",
]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A quickstart run of two steps: its run folder has checkpoints, an export and sample videos."""
    from worldmodel.config import compose_config
    from worldmodel.training.train import train

    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose_config("train", [*TINY_RUN, f"run_dir={run_dir}"])
    return train(cfg)
