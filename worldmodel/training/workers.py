"""Data loader workers leave Ctrl-C to the main process.

A terminal sends Ctrl-C's SIGINT to every process of the foreground group, loader workers included; a worker
that dies of it makes the main process fail with "DataLoader worker exited unexpectedly" before it can write
the checkpoint of the running step. Workers ignore SIGINT, and the main process shuts them down as usual.
"""
from __future__ import annotations

import os
import signal
from functools import partial
from typing import Callable

from lightning.fabric.utilities.seed import pl_worker_init_function


def _init_worker(worker_id: int, rank: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Lightning adds its worker seeding only to loaders without a worker_init_fn: keep it, as it would.
    if int(os.environ.get("PL_SEED_WORKERS", 0)):
        pl_worker_init_function(worker_id, rank=rank)


def worker_init(rank: int) -> Callable[[int], None]:
    """The `worker_init_fn` of a loader on global rank `rank`."""
    return partial(_init_worker, rank=rank)
