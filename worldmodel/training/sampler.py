"""Training sample order: an epoch-seeded shuffle, sharded by rank, that can start mid-epoch.

Every sample carries a key fixed by (seed, epoch, position in the epoch's global order). The
collator and the objective seed their per-sample draws (reference frames, time, noise, masks)
from it, so a sample's randomness does not depend on the rank, the batch it lands in, or on
whether the run was interrupted and resumed.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def sample_key(seed: int, epoch: int, position: int) -> int:
    """A 63-bit key for the sample at `position` of epoch `epoch`'s global order."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def sample_generators(keys: torch.Tensor, device: torch.device | str, stream: int = 1) -> list[torch.Generator]:
    """One torch generator per sample key (B,); `stream` separates independent uses of one key."""
    seeds = [int(np.random.SeedSequence([int(k), stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))
             for k in keys.tolist()]
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]


class ResumableShardedSampler(Sampler[tuple[int, int]]):
    """Yields (dataset index, sample key): rank r takes positions r, r + W, r + 2W, ... of the epoch's
    global permutation (as torch's DistributedSampler does, so no clip is seen twice in an epoch).

    The permutation depends on (seed, epoch) only. `resume_at(epoch, batches)` makes the next pass
    over `epoch` skip the batches this rank already trained; Lightning calls `set_epoch`.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        if num_samples < world_size * batch_size:
            raise ValueError(f"{num_samples} training clips cannot fill one batch of {batch_size} on each of "
                             f"{world_size} ranks; use more clips or a smaller data.batch_size")
        self.num_samples, self.batch_size, self.seed = int(num_samples), int(batch_size), int(seed)
        self.rank, self.world_size, self.shuffle = int(rank), int(world_size), shuffle
        # The tail that does not divide evenly between ranks is left out (it changes with the epoch).
        self.per_rank = self.num_samples // self.world_size
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume_at(self, epoch: int, batches: int) -> None:
        """Start epoch `epoch` after this rank's first `batches` batches (they were trained before)."""
        self._resume = (int(epoch), int(batches))

    def __len__(self) -> int:
        # The full epoch, also when resuming: Lightning's batch counter already holds the skipped batches.
        return self.per_rank

    def order(self, epoch: int) -> torch.Tensor:
        """The epoch's global permutation of dataset indices."""
        if not self.shuffle:
            return torch.arange(self.num_samples)
        return torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(self.seed + epoch))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, skip = self.epoch, 0
        if self._resume is not None and self._resume[0] == epoch:
            skip = self._resume[1] * self.batch_size
        self._resume = None
        order = self.order(epoch)
        for position in range(self.rank + skip * self.world_size, self.per_rank * self.world_size, self.world_size):
            yield int(order[position]), sample_key(self.seed, epoch, position)


class KeyedClips(Dataset):
    """Reads `dataset[index]` for an (index, key) pair and adds the key to the clip as `sample_key`."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        index, key = item
        return {**self.dataset[index], "sample_key": key}
