"""Preemption and Ctrl-C: on SIGTERM, SIGUSR1 or SIGINT finish the step, write `last.ckpt`, stop cleanly.

SLURM jobs are requeued after a preemption signal; a second Ctrl-C aborts at once.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl

log = logging.getLogger(__name__)


class PreemptionCheckpoint(pl.Callback):
    """Turns a preemption signal into a checkpoint at the next step boundary and a clean stop.

    The handler only records the signal; the checkpoint is written at the end of the running step,
    so it holds a consistent state that resumes exactly. Ranks agree each step (one boolean
    all-reduce), so a signal that reaches one rank stops all of them at the same step. SLURM sends
    SIGUSR1 ahead of the time limit with `#SBATCH --signal=USR1@120`; with `requeue` the job is put
    back in the queue (`scontrol requeue`) once the checkpoint is written, and resumes with ckpt_path=last.

    Ctrl-C (SIGINT) is handled the same way, so an interrupted run keeps every step it trained, except that
    it is never requeued and a second Ctrl-C raises KeyboardInterrupt at once (the last written checkpoint
    stays as it was: checkpoint files are renamed into place whole).
    """

    def __init__(self, dirpath: str, signals: Sequence[str] = ("SIGTERM", "SIGUSR1", "SIGINT"),
                 requeue: bool = True) -> None:
        self.dirpath = Path(dirpath)
        self.signals = [signal.Signals[name] for name in signals]
        self.requeue = requeue
        self.received: int | None = None
        self.stopped_at_step: int | None = None
        self.stopped_by: str | None = None
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            if self.received is not None:
                raise KeyboardInterrupt("second Ctrl-C: aborted at once, without a checkpoint of this step")
            # Written straight to stderr: a logging call inside a signal handler may deadlock on its lock.
            sys.stderr.write("\nCtrl-C: finishing this step, then writing last.ckpt and the export "
                             "(Ctrl-C again aborts at once)\n")
        self.received = signum

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.warning("training runs outside the main thread: preemption signals are not handled")
            return
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        path = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(path)
        self.stopped_at_step = trainer.global_step
        trainer.should_stop = True
        name = signal.Signals(self.received).name if self.received is not None else "a signal on another rank"
        self.stopped_by = name
        log.warning("preempted by %s: wrote %s at global step %d and stopping; resume with ckpt_path=last",
                    name, path, trainer.global_step)
        if self.requeue and trainer.is_global_zero and self.received != signal.SIGINT:
            self._requeue_on_slurm()

    def _requeue_on_slurm(self) -> None:
        job = os.environ.get("SLURM_JOB_ID")
        if job is None or shutil.which("scontrol") is None:
            return
        if "SLURM_ARRAY_JOB_ID" in os.environ:
            job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        result = subprocess.run(["scontrol", "requeue", job], check=False)
        log.warning("scontrol requeue %s %s", job, "done" if result.returncode == 0 else f"failed ({result.returncode})")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # The handler we replaced may be Lightning's, which Lightning itself removes in its teardown,
        # possibly before this hook: putting it back then would leave it installed for good, and every
        # process forked later would inherit a SIGTERM that no longer stops it.
        for sig, handler in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, handler)
        self._previous = {}
