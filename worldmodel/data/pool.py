"""An in-memory pool of clips: read or render a dataset's first clips once, then serve them from RAM."""
from __future__ import annotations

import multiprocessing
from typing import Any

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
            # fork shares the dataset with the workers without pickling it.
            with multiprocessing.get_context("fork").Pool(self.workers) as pool:
                self._clips = list(tqdm(pool.imap(self.dataset.__getitem__, indices, chunksize=8), **bar))
        else:
            self._clips = [self.dataset[i] for i in tqdm(indices, **bar)]

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._clips is None:
            self.materialize()
        return self._clips[index]
