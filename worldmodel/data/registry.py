"""Readers by name (`open_dataset`), and a seeded weighted mixture of datasets."""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from worldmodel.data.errors import SkipLog
from worldmodel.data.robust import read_exact

# Import paths, so that a reader's module (and its dependencies) loads only when it is asked for.
READERS: dict[str, str] = {
    "synthetic": "worldmodel.data.synthetic:SyntheticDriving",
    "nuscenes": "worldmodel.data.nuscenes:NuScenesClips",
    "waymo": "worldmodel.data.waymo:WaymoClips",
    "opendv": "worldmodel.data.opendv:OpenDVClips",
    "videos": "worldmodel.data.videos:VideoFolderClips",
}


def reader_class(name: str) -> type:
    """The reader class registered under `name`; ValueError listing the names when unknown."""
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(READERS)}")
    module_name, class_name = READERS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ImportError(f"dataset {name!r} needs {module_name}, which cannot be imported ({err})") from err
    if not hasattr(module, class_name):
        raise ImportError(f"dataset {name!r}: {module_name} has no {class_name} in this installation")
    return getattr(module, class_name)


def reader_options(cls: type) -> list[str]:
    """Keyword options a reader's constructor accepts."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def open_dataset(name: str, **options: Any) -> Dataset:
    """Build the reader `name` (synthetic, nuscenes, waymo, opendv, videos) with its keyword options.

    An option the reader does not take raises TypeError naming it and the reader's options.
    """
    cls = reader_class(name)
    params = inspect.signature(cls.__init__).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        accepted = reader_options(cls)
        unknown = [k for k in options if k not in accepted]
        if unknown:
            raise TypeError(f"dataset {name!r} ({cls.__name__}) has no option {', '.join(map(repr, unknown))}; "
                            f"it accepts {', '.join(accepted)}")
    return cls(**options)


def _clip_shape(dataset: Dataset) -> tuple[str, tuple[int, ...]]:
    """The frame (or latent) shape of a dataset's first clip, which every clip of a reader shares."""
    if len(dataset) == 0:
        raise ValueError(f"{type(dataset).__name__} holds no clips")
    clip = dataset[0]
    key = "frames" if "frames" in clip else "latents"
    return key, tuple(clip[key].shape)


class MixtureDataset(Dataset):
    """A weighted mixture: index i -> (member, clip) by a seeded draw fixed at construction."""

    def __init__(self, datasets: Mapping[str, Dataset], weights: Mapping[str, float], length: int,
                 seed: int = 0) -> None:
        """Members keep their own fps, views and size, but must give one clip shape (collation stacks them)."""
        if not datasets:
            raise ValueError("MixtureDataset needs at least one dataset")
        if set(weights) != set(datasets):
            raise ValueError(f"MixtureDataset weights name {sorted(weights)} but datasets are {sorted(datasets)}; "
                             "give one weight per dataset")
        if length < 1 or any(float(w) < 0 for w in weights.values()) or sum(map(float, weights.values())) <= 0:
            raise ValueError(f"MixtureDataset needs length >= 1 and weights >= 0 with a positive sum, "
                             f"got length={length}, weights={dict(weights)}")
        self.names = list(datasets)
        self.datasets = dict(datasets)
        shapes = {name: _clip_shape(ds) for name, ds in self.datasets.items()}
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"{n}: {k} {s}" for n, (k, s) in shapes.items())
            raise ValueError(f"MixtureDataset members give different clip shapes ({listed}); set the same "
                             "num_frames, views and size for every member so that clips can be batched")
        self.shape = next(iter(shapes.values()))[1]
        p = np.array([float(weights[n]) for n in self.names])
        self.weights = dict(zip(self.names, (p / p.sum()).tolist()))
        rng = np.random.default_rng(seed)
        self.member = rng.choice(len(self.names), size=int(length), p=p / p.sum())
        sizes = np.array([len(self.datasets[n]) for n in self.names])
        self.clip = np.floor(rng.random(int(length)) * sizes[self.member]).astype(np.int64)
        self.seed, self.length = int(seed), int(length)

    def __len__(self) -> int:
        return self.length

    def locate(self, index: int) -> tuple[str, int]:
        """(member name, clip index) that mixture index `index` reads."""
        if not 0 <= index < self.length:
            raise IndexError(f"clip {index} out of range ({self.length} clips)")
        return self.names[int(self.member[index])], int(self.clip[index])

    def __getitem__(self, index: int) -> dict[str, Any]:
        name, clip = self.locate(index)
        return self.datasets[name][clip]

    def read_clip(self, index: int) -> dict[str, Any]:
        """Exactly clip `index`: its member's own clip, never a substitute (see `read_exact`)."""
        name, clip = self.locate(index)
        return read_exact(self.datasets[name], clip)

    @property
    def skips(self) -> SkipLog:
        """The members' skip logs merged, each reason prefixed by its member's name."""
        merged = SkipLog()
        for name, ds in self.datasets.items():
            log = getattr(ds, "skips", None)
            if log is None:
                continue
            renamed = SkipLog(examples=log.max_examples)
            for reason, count in log.counts.items():
                renamed.counts[f"{name}: {reason}"] = count
                renamed.examples[f"{name}: {reason}"] = list(log.examples[reason])
            merged.merge(renamed)
        return merged

    def build_index(self) -> list[dict[str, Any]]:
        """(member, clip) of every mixture index."""
        return [{"dataset": self.names[int(m)], "clip": int(c)} for m, c in zip(self.member, self.clip)]

    def describe(self) -> dict[str, Any]:
        """Members' descriptions, weights, length and merged skips."""
        members = {n: ds.describe() if hasattr(ds, "describe") else {"clips": len(ds)} for n, ds in self.datasets.items()}
        skips = self.skips
        return {"dataset": "mixture", "weights": self.weights, "clips": self.length, "members": members,
                "scenes": sum(int(m.get("scenes", 0)) for m in members.values()),
                "frames": self.length * int(np.prod(self.shape[:2])),
                "skipped": skips.as_dict(), "skipped_total": skips.total}
