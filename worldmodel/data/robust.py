"""A dataset wrapper that survives unreadable clips: skip, log, count, and substitute a readable one."""
from __future__ import annotations

import logging
from typing import Any

from torch.utils.data import Dataset

log = logging.getLogger(__name__)


class BadSampleError(RuntimeError):
    """Too many clips failed to load: the dataset, not one file, is broken."""


class SkipBadSamples(Dataset):
    """`dataset[i]`, or when clip i fails to load, the next readable clip (i + 1, i + 2, ...).

    Each returned clip carries `load_failures`: how many clips failed on the way to it. The collator
    stacks that per batch, so the training loop counts failures exactly even when they happen in
    data loader workers (each worker holds its own copy of this wrapper and of `failures`).
    After `max_tries` consecutive failures it raises BadSampleError with the last error.
    """

    def __init__(self, dataset: Dataset, max_tries: int = 16) -> None:
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self.dataset = dataset
        self.max_tries = max_tries
        self.failures = 0  # in this process (a worker counts its own)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.dataset)
        errors: list[str] = []
        for attempt in range(min(self.max_tries, n)):
            i = (index + attempt) % n
            try:
                clip = self.dataset[i]
            except IndexError:
                raise
            except Exception as err:  # readers raise DatasetError; decoders may raise OSError, ValueError, ...
                self.failures += 1
                errors.append(f"clip {i}: {type(err).__name__}: {err}")
                log.warning("skipping unreadable clip %d of %s (%s: %s)", i, type(self.dataset).__name__,
                            type(err).__name__, err)
                continue
            return {**clip, "load_failures": attempt}
        raise BadSampleError(f"{len(errors)} clips in a row failed to load from {type(self.dataset).__name__} "
                             f"(from clip {index}); the dataset looks broken. Last errors: " + "; ".join(errors[-3:]))


def read_exact(dataset: Dataset, index: int) -> dict[str, Any]:
    """Clip `index` itself: through the reader's `read_clip` where `__getitem__` would substitute another.

    Evaluation and rollout read clips this way, so that every number belongs to the clip it is recorded under.
    """
    read = getattr(dataset, "read_clip", None)
    return read(index) if callable(read) else dataset[index]
