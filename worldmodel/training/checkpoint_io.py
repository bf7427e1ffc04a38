"""Checkpoint files that are complete or absent: atomic writes, and `ckpt_path=last` that skips damaged ones."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from worldmodel.files import FileWriteError

log = logging.getLogger(__name__)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to a hidden temporary beside `path`, fsync, then rename over it.

    A crash at any point leaves either the previous file or the new complete one under `path`
    (plus, at worst, a `.name.tmp-pid` file that nothing reads).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself reaches the disk
    except (OSError, RuntimeError) as err:  # a full disk reaches here as torch's RuntimeError
        raise FileWriteError(path, err) from err
    finally:
        tmp.unlink(missing_ok=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, writing through `atomic_torch_save` (local or shared file systems), and
    reading weights-only: a resumed `.ckpt` may come from anyone, and a full unpickler runs whatever it names."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any | None = lambda storage, loc: storage,
                        weights_only: bool | None = None) -> dict[str, Any]:
        """torch.load with weights_only=True whatever the caller asks (`Trainer.fit(weights_only=False)` included).

        Our checkpoints hold tensors, numbers, strings and containers only (the optimizer, loops, callbacks and
        the run config): `checkpoint_problem` reads them weights-only too, so `ckpt_path=last` skips what this refuses.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        return torch.load(path, map_location=map_location, weights_only=True)


def checkpoint_problem(path: Path) -> str | None:
    """Why `path` cannot be resumed from (None when it can): unreadable, truncated, or no training state.

    Files are opened memory-mapped, so only the zip directory and the pickled structure are read.
    A folder is a sharded (FSDP) checkpoint: its torch.distributed.checkpoint `.metadata`, written
    once every shard is, and Lightning's `meta.pt` must both be there.
    """
    try:
        if path.is_dir():
            missing = [name for name in (".metadata", "meta.pt") if not (path / name).is_file()]
            if missing:
                return f"sharded checkpoint without {', '.join(missing)} (its writing did not finish)"
            torch.load(path / "meta.pt", map_location="cpu", weights_only=True)
            return None
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as err:  # truncated zips and foreign files raise several types
        return f"{type(err).__name__}: {err}"
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "global_step" not in checkpoint:
        return "not a Lightning training checkpoint (no state_dict / global_step)"
    return None


def newest_good_checkpoint(dirpath: str | Path) -> Path | None:
    """The most recently written `*.ckpt` in `dirpath` that loads; damaged ones are skipped with a warning."""
    candidates = [p for p in Path(dirpath).glob("*.ckpt") if not p.name.startswith(".")]
    # Newest first; at equal times prefer last.ckpt (it is written after the step checkpoint of its step).
    candidates.sort(key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt"), reverse=True)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        log.warning("skipping damaged checkpoint %s (%s); trying an older one", path, problem)
    return None
