"""Test-only callbacks: record each step's loss exactly, and poison or signal a run at a chosen step."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch


class LossRecorder(pl.Callback):
    """Appends `global_step loss.hex()` per optimiser step to `path` (hex keeps every bit)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.is_global_zero:
            loss = "skipped" if not outputs else float(outputs["loss"]).hex()
            with self.path.open("a") as f:
                f.write(f"{trainer.global_step} {loss}\n")


class SignalAtStep(pl.Callback):
    """Sends `signal` to this very process when training reaches global step `step`."""

    def __init__(self, step: int, signal: str = "SIGTERM") -> None:
        self.step = step
        self.signum = signal

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), getattr(signal, self.signum))


class PoisonLossAtStep(pl.Callback):
    """Makes the loss NaN at global step `step` by putting a NaN into the batch's clean latents' source frames.

    The poison goes through the real path: codec, model and objective see a NaN input.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.global_step == self.step:
            original = pl_module.encode

            def poisoned(frames):
                pl_module.encode = original  # one batch only
                latents = original(frames)
                return latents * float("nan")

            pl_module.encode = poisoned


class OutOfMemoryAtStep(pl.Callback):
    """Raises the error a CUDA allocation failure raises, at global step `step` (constructible on CPU builds)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.global_step == self.step:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.11 GiB total)")


class FlagAndWaitAtStep(pl.Callback):
    """At global step `step`, touches `flag` and sleeps `seconds`: a parent process watching for the flag can
    signal this run while that step is running."""

    def __init__(self, step: int, flag: str, seconds: float = 3.0) -> None:
        self.step, self.flag, self.seconds = step, Path(flag), seconds

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.global_step == self.step:
            self.flag.touch()
            time.sleep(self.seconds)
