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


_WATCHED_SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2")


@pytest.fixture(autouse=True)
def signal_handlers_are_restored():
    """Fail a test that leaves a process-wide signal handler behind.

    A leaked handler that only sets a flag (Lightning's, our preemption guard's) is inherited by every
    process forked later in the same test worker, and makes those processes immune to terminate().
    """
    import signal

    before = {name: signal.getsignal(getattr(signal, name)) for name in _WATCHED_SIGNALS}
    yield
    leaked = {name: signal.getsignal(getattr(signal, name)) for name in _WATCHED_SIGNALS}
    leaked = {name: handler for name, handler in leaked.items() if handler is not before[name]}
    for name in leaked:
        signal.signal(getattr(signal, name), before[name])
    assert not leaked, f"the test left signal handlers installed: {leaked}"
