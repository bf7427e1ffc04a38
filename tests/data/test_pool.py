"""ClipPool serves exactly the clips of the dataset it wraps, rendered once."""
from __future__ import annotations

import numpy as np

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
