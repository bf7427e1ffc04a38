"""`ckpt_path=`: which checkpoint a run resumes from, checked before any data or model is built.

A resume must rebuild the network the checkpoint was trained as: a model or codec setting that differs is
named here, key by key, instead of a `load_state_dict` error after the whole run has been set up.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from worldmodel.errors import UserInputError
from worldmodel.retired import retire_settings
from worldmodel.training.checkpoint_io import checkpoint_problem, newest_good_checkpoint

# Sections that decide the network's weights. Keys that only say where the starting weights came from (the SD3
# folder, which the checkpoint's weights replace) or how many clips a codec call takes may differ.
ARCHITECTURE_SECTIONS = ("model", "codec")
IGNORED_KEYS = {"pretrained_sd3", "pretrained_path", "chunk_size"}


class ResumeError(UserInputError, ValueError):
    """A `ckpt_path` that cannot be resumed from, or one trained with another model config."""


def resolve_ckpt_path(ckpt_path: str | None, run_dir: Path) -> Path | None:
    """The checkpoint file (or sharded folder) to resume from; None starts a new run."""
    if ckpt_path is None:
        return None
    if str(ckpt_path) == "last":
        # The newest checkpoint that loads: a last.ckpt cut short by a crash falls back to the one before.
        found = newest_good_checkpoint(run_dir / "checkpoints")
        if found is None:
            raise ResumeError(f"ckpt_path=last but {run_dir / 'checkpoints'} holds no loadable last.ckpt or "
                              f"step*.ckpt: pass run_dir= of the run to resume")
        return found
    path = Path(str(ckpt_path)).expanduser()
    if not path.exists():
        raise ResumeError(f"ckpt_path={ckpt_path} does not exist: pass a .ckpt (<run_dir>/checkpoints/last.ckpt), "
                          f"or ckpt_path=last with the run's run_dir=")
    if path.is_dir():
        if (path / "worldmodel.json").is_file():
            raise ResumeError(
                f"ckpt_path={ckpt_path} is an export folder (weights only, no optimiser state): resume from its "
                f"run's <run_dir>/checkpoints/last.ckpt, or ckpt_path=last run_dir=<that run>")
        if not (path / ".metadata").is_file():
            raise ResumeError(f"ckpt_path={ckpt_path} is a folder but not a sharded (FSDP) checkpoint: pass a .ckpt "
                              f"file, e.g. {path / 'last.ckpt'}")
    problem = checkpoint_problem(path)
    if problem is not None:
        raise ResumeError(f"ckpt_path={ckpt_path} cannot be resumed from ({problem}); ckpt_path=last picks the "
                          f"newest loadable checkpoint of run_dir=")
    return path


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key not in IGNORED_KEYS:
                out.update(_flatten(value, f"{prefix}.{key}"))
        return out
    return {prefix: node}


def stored_run_config(path: Path) -> dict[str, Any] | None:
    """The run config a worldmodel checkpoint carries (None for a sharded checkpoint or one without it)."""
    if path.is_dir():
        return None
    checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    stored = checkpoint.get("worldmodel", {}) if isinstance(checkpoint, dict) else {}
    config = stored.get("config") if isinstance(stored, dict) else None
    if not isinstance(config, dict):
        return None
    # Settings this version no longer has are dropped (or refused) as when the checkpoint is loaded for sampling.
    return {key: retire_settings(key, value, path) if isinstance(value, dict) else value
            for key, value in config.items()}


def config_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'model.temporal_window: 3 in the checkpoint, 1 now' for every architecture key that differs."""
    lines = []
    for section in ARCHITECTURE_SECTIONS:
        before, now = _flatten(stored.get(section, {}), section), _flatten(current.get(section, {}), section)
        for key in sorted(before.keys() | now.keys()):
            a, b = before.get(key, "<absent>"), now.get(key, "<absent>")
            if a != b:
                lines.append(f"{key}: {a!r} in the checkpoint, {b!r} now")
    return lines


def check_resume_matches(path: Path, run_config: dict[str, Any]) -> None:
    """Refuse a resume whose model or codec settings differ from the checkpoint's, naming every key."""
    stored = stored_run_config(path)
    if stored is None:
        return
    differences = config_differences(stored, run_config)
    if differences:
        shown = "; ".join(differences[:6]) + ("; ..." if len(differences) > 6 else "")
        raise ResumeError(
            f"ckpt_path={path} was trained with another model: {shown}. Drop those overrides to resume "
            f"(or start a new run with another run_dir= to train the changed model)")
