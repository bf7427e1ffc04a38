"""SIGTERM or SIGUSR1 during training: the step finishes, last.ckpt holds it, the run returns cleanly."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.training.preemption import PreemptionCheckpoint
from worldmodel.training.train import train


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_signal_writes_a_checkpoint_of_that_step_and_stops(name: str, tmp_path: Path) -> None:
    cfg = compose_config("train", [
        *TINY_RUN, f"run_dir={tmp_path}", "trainer.max_steps=50", "trainer.val_check_interval=50",
        "callbacks.sample_videos.every_n_train_steps=0", "callbacks.export.every_n_train_steps=0",
        "+callbacks.test_hook._target_=tests.training.recorder.SignalAtStep", "+callbacks.test_hook.step=2",
        f"+callbacks.test_hook.signal={name}"])
    result = train(cfg)  # returns: no exception, no exit
    assert result.preempted_at_step == 3  # the signal came before step 3 ran; step 3 finished
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 3
    # Our handler is gone again (Lightning's own SIGTERM handling is back in charge).
    handler = signal.getsignal(getattr(signal, name))
    assert not isinstance(getattr(handler, "__self__", None), PreemptionCheckpoint), "the handler was not put back"
