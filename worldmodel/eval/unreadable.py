"""Selected clips an evaluation cannot read: skipped, counted and named (or a hard error), never replaced.

Training readers replace a clip with a damaged file by the next readable one, so that a long run goes on;
an evaluation must not, or the next clip is scored twice under two names. Here every selected clip is read
as itself (`read_exact`), and one that fails is, by `unreadable_clips`:
  skip   left out of every number, and named (clip index, file, reason) in metrics.json;
  error  an UnreadableClipError naming the clip and the file.
A skipped clip is not in the saved state's finished videos, so a resumed run tries it again (a repaired file
is then scored). Each shard writes its skips beside its state, for the shard that merges them all.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from worldmodel.data.errors import CorruptFileError, DatasetError
from worldmodel.data.robust import read_exact
from worldmodel.eval.protocol import ProtocolError
from worldmodel.files import atomic_write_json

log = logging.getLogger(__name__)

POLICIES = ("skip", "error")


class UnreadableClipError(DatasetError):
    """A selected clip cannot be read and `unreadable_clips=error` asks to stop there."""


@dataclass(frozen=True)
class SkippedClip:
    """One selected clip left out: its place in the selection, its index in the split, what failed and why."""

    position: int
    clip: int
    file: str | None
    reason: str


def _what_failed(err: Exception) -> tuple[str | None, str]:
    if isinstance(err, CorruptFileError):
        return err.path, err.reason
    filename = getattr(err, "filename", None)
    return (None if filename is None else str(filename)), f"{type(err).__name__}: {err}"


class UnreadableClips:
    """The selected clips this evaluation could not read, under one policy (skip | error)."""

    def __init__(self, policy: str, protocol_name: str) -> None:
        if policy not in POLICIES:
            raise ProtocolError(f"unreadable_clips must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.policy, self.protocol_name = policy, protocol_name
        self.skipped: dict[int, SkippedClip] = {}

    def read(self, dataset: Dataset, position: int, clip: int) -> dict[str, Any] | None:
        """Clip `clip` (at `position` of the selection), or None when it cannot be read and the policy skips it."""
        try:
            data = read_exact(dataset, clip)
        except (CorruptFileError, OSError) as err:  # a damaged or missing file; anything else is a bug
            file, reason = _what_failed(err)
            if self.policy == "error":
                raise UnreadableClipError(
                    f"protocol {self.protocol_name!r}: clip {clip} cannot be read: {file or '?'}: {reason} "
                    "(unreadable_clips=skip scores the other clips and names this one in metrics.json)") from err
            log.warning("evaluation skips unreadable clip %d (%s: %s)", clip, file, reason)
            self.skipped[position] = SkippedClip(position, clip, file, reason)
            return None
        self.skipped.pop(position, None)  # read now: a repaired file after a resume
        return data

    def first_readable(self, dataset: Dataset, indices: Sequence[int]) -> tuple[int, dict[str, Any]]:
        """(position, clip) of the first selected clip that reads; DatasetError when none does."""
        for position, clip in enumerate(indices):
            data = self.read(dataset, position, clip)
            if data is not None:
                return position, data
        examples = "; ".join(f"clip {s.clip}: {s.file}: {s.reason}" for s in list(self.skipped.values())[:3])
        raise DatasetError(f"protocol {self.protocol_name!r}: none of the {len(indices)} selected clips can be read "
                           f"({examples})")

    def read_batch(self, dataset: Dataset, indices: Sequence[int], positions: Sequence[int],
                   known: dict[int, dict[str, Any]]) -> tuple[list[int], list[dict[str, Any]]]:
        """The positions of a batch that read, and their clips (`known`: clips read already, by position).

        A position skipped already in this run (by `first_readable`) is not read twice.
        """
        kept, clips = [], []
        for p in positions:
            if p in self.skipped:
                continue
            data = known[p] if p in known else self.read(dataset, p, indices[p])
            if data is not None:
                kept.append(p)
                clips.append(data)
        return kept, clips

    # ------------------------------------------------------------------ records
    def records(self, scored: Iterable[int] = ()) -> list[dict[str, Any]]:
        """The skipped clips in selection order, leaving out any position `scored` (read by another run since)."""
        done = set(scored)
        return [asdict(self.skipped[p]) for p in sorted(self.skipped) if p not in done]

    def resolved(self, indices: Sequence[int], scored: Iterable[int]) -> dict[str, Any]:
        """The protocol record's account of the selection: what was scored (exactly) and what was skipped."""
        done = sorted(scored)
        return {"videos": len(done), "clips_selected": len(indices), "clip_indices": [int(indices[p]) for p in done],
                "unreadable_clips": self.policy, "skipped_clips": self.records(done)}

    def save(self, path: Path, positions: Iterable[int]) -> Path:
        """This shard's skips (those among `positions`) beside its state, for the shard that merges them."""
        mine = set(positions)
        return atomic_write_json(path, [r for r in self.records() if r["position"] in mine])

    def merge_saved(self, paths: Iterable[Path]) -> None:
        """Take every shard's saved skips (a shard not yet saved has none) as this run's."""
        for path in paths:
            if path.is_file():
                for record in json.loads(path.read_text()):
                    self.skipped[int(record["position"])] = SkippedClip(**record)


def skips_path(state_path: Path) -> Path:
    """Where the skips of the state at `state_path` are saved: eval_state[.shardI-of-N].skipped.json."""
    return state_path.with_suffix(".skipped.json")


def skipped_line(resolved: Mapping[str, Any]) -> str | None:
    """One line for the command line and the report page naming the skipped clips; None when none was."""
    skipped = resolved.get("skipped_clips") or []
    if not skipped:
        return None
    named = "; ".join(f"clip {s['clip']} ({s['file'] or '?'}: {s['reason']})" for s in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return (f"skipped {len(skipped)} of {resolved['clips_selected']} selected clips as unreadable (not scored; "
            f"all named in metrics.json under protocol.resolved.skipped_clips): {named}{more}")
