"""An in-memory pool of clips: read or render a dataset's first clips once, then serve them from RAM."""
from __future__ import annotations

import multiprocessing
import pickle
from typing import Any, Iterator

from torch.utils.data import Dataset
from tqdm.auto import tqdm


class ClipPool(Dataset):
    """Holds `num_clips` clips of `dataset` in memory after `materialize()`.

    Meant for small CPU runs on the procedural world, where building a world per clip costs more
    than a tiny model's training step: the pool renders once (in parallel) and training then
    spends its time on the model. Memory is clips x frames x views x H x W x 3 bytes.
    """

    def __init__(self, dataset: Dataset, num_clips: int = 1024, workers: int = 2, progress: bool = True) -> None:
        if num_clips < 1:
            raise ValueError(f"ClipPool.num_clips must be >= 1, got {num_clips}")
        self.dataset = dataset
        self.num_clips = min(num_clips, len(dataset))
        self.workers = workers
        self.progress = progress
        self._clips: list[dict[str, Any]] | None = None

    def materialize(self) -> None:
        """Read every pooled clip now (idempotent); call before data loader workers fork."""
        if self._clips is not None:
            return
        indices = range(self.num_clips)
        bar = dict(total=self.num_clips, desc="rendering clip pool", disable=not self.progress)
        if self.workers > 1:
            self._clips = list(tqdm(self._render_in_workers(indices), **bar))
        else:
            self._clips = [self.dataset[i] for i in tqdm(indices, **bar)]

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._clips is None:
            self.materialize()
        return self._clips[index]

    def _render_in_workers(self, indices: range) -> Iterator[dict[str, Any]]:
        """Yield the clips of `indices` in order, read by `workers` processes from a forkserver.

        Not "fork": this runs inside trainer.fit, whose process has threads (Lightning, data loaders,
        test runners) and Python SIGTERM handlers that only set a flag. A forked worker inherits both,
        so it can wait forever on a lock another thread held at the fork, and Pool.terminate() cannot
        kill it: the pool's exit then blocks for good. Forkserver workers start from a clean
        single-threaded server with default signal handlers; the dataset travels once per worker.
        """
        try:
            payload = pickle.dumps(self.dataset)
        except Exception as error:  # noqa: BLE001 - any pickling failure means the same fix
            raise TypeError(f"ClipPool(workers={self.workers}) sends the dataset {type(self.dataset).__name__} "
                            f"to worker processes, but it cannot be pickled ({error}); "
                            "set workers=1 to render in this process") from error
        context = multiprocessing.get_context("forkserver")
        with context.Pool(self.workers, initializer=_receive_dataset, initargs=(payload,)) as pool:
            yield from pool.imap(_read_clip, indices, chunksize=8)


_WORKER_DATASET: Any = None  # set once per pool worker by _receive_dataset


def _receive_dataset(payload: bytes) -> None:
    global _WORKER_DATASET
    _WORKER_DATASET = pickle.loads(payload)


def _read_clip(index: int) -> dict[str, Any]:
    return _WORKER_DATASET[index]
