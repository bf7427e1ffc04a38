"""ClipPool serves exactly the clips of the dataset it wraps, rendered once."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from worldmodel.data.pool import ClipPool
from worldmodel.data.synthetic import SyntheticDriving


class CountingDataset:
    """Counts reads, to prove the pool reads each clip once."""

    def __init__(self, inner) -> None:
        self.inner, self.reads = inner, 0

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i):
        self.reads += 1
        return self.inner[i]


def test_pool_matches_the_dataset_and_reads_each_clip_once() -> None:
    source = CountingDataset(SyntheticDriving(num_clips=10, num_frames=3, size=(32, 64)))
    pool = ClipPool(source, num_clips=4, workers=1, progress=False)
    assert len(pool) == 4
    pool.materialize()
    pool.materialize()
    for i in (0, 3, 0):
        assert np.array_equal(pool[i]["frames"], source.inner[i]["frames"])
    assert source.reads == 4


def test_parallel_pool_equals_serial_pool() -> None:
    source = SyntheticDriving(num_clips=6, num_frames=2, size=(32, 64))
    serial = ClipPool(source, num_clips=6, workers=1, progress=False)
    parallel = ClipPool(source, num_clips=6, workers=2, progress=False)
    for i in range(6):
        assert np.array_equal(serial[i]["frames"], parallel[i]["frames"])
        assert serial[i]["meta"]["scene"] == parallel[i]["meta"]["scene"]


def test_pool_is_capped_by_the_dataset_length() -> None:
    assert len(ClipPool(SyntheticDriving(num_clips=3, num_frames=2, size=(32, 64)), num_clips=100)) == 3


class HandlerProbe:
    """A dataset whose clips report the SIGTERM handler of the process that read them."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        return {"sigterm_is_default": signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "pid": os.getpid()}


def test_parallel_pool_workers_do_not_inherit_the_parents_signal_handlers() -> None:
    # Inside trainer.fit the parent's SIGTERM handler only sets a flag; a worker that inherits it
    # survives Pool.terminate() and the pool's exit waits on it forever.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        pool = ClipPool(HandlerProbe(), num_clips=4, workers=2, progress=False)
        clips = [pool[i] for i in range(4)]
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert all(clip["pid"] != os.getpid() for clip in clips)
    assert all(clip["sigterm_is_default"] for clip in clips)


def test_parallel_pool_names_a_dataset_that_cannot_travel_to_workers() -> None:
    unpicklable = CountingDataset(SyntheticDriving(num_clips=4, num_frames=2, size=(32, 64)))
    unpicklable.hook = lambda: None  # lambdas do not pickle
    with pytest.raises(TypeError, match="CountingDataset.*cannot be pickled.*workers=1"):
        ClipPool(unpicklable, num_clips=4, workers=2, progress=False).materialize()
