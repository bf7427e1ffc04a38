"""Which clips of a split an evaluation uses: every one, the first N, N spread evenly, or one per scene."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset


def _scene_of(entry: dict[str, Any]) -> str | None:
    for key in ("scene", "segment", "video", "path"):
        if key in entry:
            return str(entry[key])
    return None


def _scene_keys(dataset: Dataset) -> list[str]:
    """Scene of every clip, from the reader's pixel-free index when it has one."""
    if hasattr(dataset, "build_index"):
        entries = dataset.build_index()
        if len(entries) == len(dataset):
            keys = [_scene_of(e) for e in entries]
            if all(k is not None for k in keys):
                return keys  # type: ignore[return-value]
    # Readers without an index (the procedural world): every clip is its own episode.
    return [str(i) for i in range(len(dataset))]


def evenly_spaced(count: int, wanted: int | None) -> list[int]:
    """`wanted` indices spread over range(count), first and last included; all when wanted is None or larger."""
    if wanted is None or wanted >= count:
        return list(range(count))
    return np.unique(np.round(np.linspace(0, count - 1, wanted)).astype(int)).tolist()


def select_clips(dataset: Dataset, selection: str, wanted: int | None) -> list[int]:
    """Clip indices for a protocol's `selection` (first | evenly_spaced | per_scene) and `num_videos`."""
    count = len(dataset)
    if count == 0:
        raise ValueError("the evaluation split has no clips long enough for this protocol")
    if selection == "first":
        return list(range(min(count, wanted if wanted is not None else count)))
    if selection == "evenly_spaced":
        return evenly_spaced(count, wanted)
    if selection == "per_scene":
        first: dict[str, int] = {}
        for i, key in enumerate(_scene_keys(dataset)):
            first.setdefault(key, i)
        starts = list(first.values())
        return [starts[i] for i in evenly_spaced(len(starts), wanted)]
    raise ValueError(f"unknown selection {selection!r}")


def fid_frame_mask(num_videos: int, frames_per_video: int, views: int, wanted: int | None,
                   seed: int) -> np.ndarray | None:
    """bool (num_videos, frames_per_video, views): which generated frames enter FID; None means all.

    Chosen once from the seed, before any video is generated, so a resumed or sharded run picks the same set.
    """
    total = num_videos * frames_per_video * views
    if wanted is None or wanted >= total:
        return None
    chosen = np.random.default_rng(seed).choice(total, size=wanted, replace=False)
    mask = np.zeros(total, dtype=bool)
    mask[chosen] = True
    return mask.reshape(num_videos, frames_per_video, views)


def segments(first_reference: int, num_frames: int, fps: float, step_s: float | None) -> list[tuple[str, int, int]]:
    """(label, start, stop) frame ranges to score: all predicted frames, then per `step_s` of horizon.

    Segment j holds the predicted frames whose time after the last reference frame lies in
    (j * step_s, (j + 1) * step_s]; a last partial step is kept only when it has at least half a step.
    """
    out = [("all", first_reference, num_frames)]
    if step_s is None:
        return out
    per_step = int(round(step_s * fps))
    if per_step < 1:
        raise ValueError(f"horizon_step_s={step_s} is shorter than one frame at {fps} Hz")
    start = first_reference
    while start < num_frames:
        stop = min(start + per_step, num_frames)
        if stop - start < (per_step + 1) // 2:
            break
        horizon = (stop - first_reference) / fps
        out.append((f"{(start - first_reference) / fps:g}-{horizon:g}s", start, stop))
        start = stop
    return out


def labels(segment_list: Sequence[tuple[str, int, int]]) -> list[str]:
    return [label for label, _, _ in segment_list]
