"""LightningDataModule over any clip reader: loaders, workers and the clip collator."""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch.utils.data import DataLoader, Dataset

from worldmodel.data.collate import ClipCollator
from worldmodel.data.errors import DatasetRootError
from worldmodel.data.robust import SkipBadSamples
from worldmodel.training.sampler import KeyedClips, ResumableShardedSampler
from worldmodel.training.workers import worker_init


_WORKER_STARTS = (None, "fork", "forkserver", "spawn")
# The arguments of a reader's config (conf/data/) that name the folder it reads.
_FOLDER_KEYS = ("root", "cache_dir")
_ENV_VARIABLE = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)")


def check_dataset_roots(data: DictConfig, key: str = "data") -> None:
    """Raise one DatasetRootError for the reader folders of the data config `data` that do not exist.

    Called before anything is built: a reader would otherwise fail only once it scans (after the readers
    before it scanned), inside Hydra's instantiation error, and naming a path rather than the setting to
    change. Each missing folder is named with its key and, where conf/data/ reads it from one, its
    environment variable (NUSCENES_ROOT, ...); folders of one variable (train and val) are named once.
    """
    problems: dict[str, str] = {}
    for where, raw, value in _folder_settings(data, key):
        if value is None:
            continue
        folder = Path(str(value)).expanduser()
        if folder.is_dir():
            continue
        state = "is not a folder" if folder.exists() else "does not exist"
        found = _ENV_VARIABLE.search(raw)
        if found is None:
            fix = f"pass {where}=<folder>"
        elif raw.startswith("${oc.env:") and raw.endswith("}") and raw.count("}") == 1:
            fix = f"set {found.group(1)}=<folder> or pass {where}=<folder>"
        else:
            # The variable is only part of the path (LATENT_CACHE/train): say how the path is built from it.
            fix = f"set {found.group(1)} ({where} is {raw}) or pass {where}=<folder>"
        problems.setdefault(found.group(1) if found else where,
                            f"{where}: the dataset folder {folder.absolute()} {state}; {fix}")
    if problems:
        raise DatasetRootError("; ".join(problems.values()))


def _folder_settings(node: Any, where: str) -> Iterator[tuple[str, str, Any]]:
    """(key path, value as written, resolved value) of every reader folder in a config, unresolved walk."""
    if not isinstance(node, DictConfig):
        return
    raw = OmegaConf.to_container(node, resolve=False)
    is_reader = "_target_" in raw
    for name, written in raw.items():
        path = f"{where}.{name}"
        if is_reader and name in _FOLDER_KEYS and not isinstance(written, (dict, list)):
            try:
                value = OmegaConf.select(node, str(name), throw_on_missing=True)
            except OmegaConfBaseException:
                continue  # an unresolvable value: the reader's own error says more than a guess here
            yield path, str(written), value
        elif isinstance(written, dict):
            yield from _folder_settings(node[name], path)


class WorldModelDataModule(pl.LightningDataModule):
    """Wraps a train and a validation clip dataset (any reader of the data contract)."""

    def __init__(self, train: Dataset, val: Dataset | None = None, batch_size: int = 8,
                 num_workers: int = 0, reference_choices: Sequence[int] = (0, 1, 2, 3),
                 reference_weights: Sequence[float] | None = None, pin_memory: bool = False,
                 clip: Mapping[str, Any] | None = None, seed: int = 0,
                 multiprocessing_context: str | None = None) -> None:
        super().__init__()
        # The clip settings both readers share (frames, fps, views, size); rollout reads them back.
        self.clip = dict(clip or {})
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.train_set = train
        self.val_set = val
        self.batch_size = batch_size
        if multiprocessing_context not in _WORKER_STARTS:
            raise ValueError(f"data.multiprocessing_context must be one of {sorted(map(str, _WORKER_STARTS))}, "
                             f"got {multiprocessing_context!r}")
        # What both loaders share about their worker processes. A context of None keeps torch's default
        # (fork on Linux); readers whose libraries run threads of their own (pyarrow for Waymo v2) are
        # safer with forkserver: a forked worker can inherit a held lock.
        self._worker_options = dict(num_workers=num_workers, pin_memory=pin_memory,
                                    persistent_workers=num_workers > 0,
                                    multiprocessing_context=multiprocessing_context if num_workers > 0 else None)
        self.collate = ClipCollator(reference_choices, reference_weights)
        # Validation always predicts from one reference frame, the paper's main protocol.
        self.val_collate = ClipCollator((1,))
        # The training order is (seed, epoch)-shuffled and sharded here, not by Lightning's DistributedSampler.
        self.seed = seed
        self.train_sampler: ResumableShardedSampler | None = None
        self._resume: dict[str, int] | None = None

    def setup(self, stage: str | None = None) -> None:
        # In-memory pools fill here, in the main process, so data loader workers inherit them.
        for dataset in (self.train_set, self.val_set):
            if hasattr(dataset, "materialize"):
                dataset.materialize()

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        if trainer.world_size > 1 and trainer._accelerator_connector.use_distributed_sampler:
            # Lightning would shard our already sharded order a second time.
            raise ValueError("set trainer.use_distributed_sampler=false: the data module shards the training "
                             "clips by rank itself (conf/trainer/default.yaml does)")
        return trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_and_world()
        self.train_sampler = ResumableShardedSampler(len(self.train_set), self.batch_size, self.seed, rank, world)
        if self._resume is not None:
            self.train_sampler.resume_at(**self._resume)
        return DataLoader(
            KeyedClips(SkipBadSamples(self.train_set)), batch_size=self.batch_size, sampler=self.train_sampler,
            collate_fn=self.collate, drop_last=True, **self._worker_options, worker_init_fn=worker_init(rank),
            # Its own generator keeps the loader from drawing on torch's global one (exact resume).
            generator=torch.Generator().manual_seed(self.seed))

    def state_dict(self) -> dict[str, Any]:
        """Where the training order stands: epoch and batches this rank trained in it (saved in the .ckpt)."""
        trainer = self.trainer
        if trainer is None:
            return {}
        return {"epoch": trainer.current_epoch, "world_size": trainer.world_size, "batch_size": self.batch_size,
                "batches": trainer.fit_loop.epoch_loop.batch_progress.current.processed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        batches = int(state["batches"])
        rank, world = self._rank_and_world()
        if (state["world_size"], state["batch_size"]) != (world, self.batch_size):
            # The same clips are done; map them onto the new layout, rounding down (a few may repeat).
            done = batches * int(state["batch_size"]) * int(state["world_size"])
            batches = done // (self.batch_size * world)
            rank_zero_warn(f"resuming with world size {world} x batch {self.batch_size} instead of "
                           f"{state['world_size']} x {state['batch_size']}: the epoch continues after about "
                           f"{done} clips, so the data order is not the uninterrupted run's")
        self._resume = {"epoch": int(state["epoch"]), "batches": batches}

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, collate_fn=self.val_collate,
                          **self._worker_options, worker_init_fn=worker_init(self._rank_and_world()[0]))
