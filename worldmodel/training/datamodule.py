"""LightningDataModule over any clip reader: loaders, workers and the clip collator."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset

from worldmodel.data.collate import ClipCollator


class WorldModelDataModule(pl.LightningDataModule):
    """Wraps a train and a validation clip dataset (any reader of the data contract)."""

    def __init__(self, train: Dataset, val: Dataset | None = None, batch_size: int = 8,
                 num_workers: int = 0, reference_choices: Sequence[int] = (0, 1, 2, 3),
                 reference_weights: Sequence[float] | None = None, pin_memory: bool = False,
                 clip: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        # The clip settings both readers share (frames, fps, views, size); rollout reads them back.
        self.clip = dict(clip or {})
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.train_set = train
        self.val_set = val
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.collate = ClipCollator(reference_choices, reference_weights)
        # Validation always predicts from one reference frame, the paper's main protocol.
        self.val_collate = ClipCollator((1,))

    def setup(self, stage: str | None = None) -> None:
        # In-memory pools fill here, in the main process, so data loader workers inherit them.
        for dataset in (self.train_set, self.val_set):
            if hasattr(dataset, "materialize"):
                dataset.materialize()

    def _loader(self, dataset: Dataset, shuffle: bool, collate: ClipCollator) -> DataLoader:
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
            collate_fn=collate, pin_memory=self.pin_memory, drop_last=shuffle,
            persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True, collate=self.collate)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return self._loader(self.val_set, shuffle=False, collate=self.val_collate)
