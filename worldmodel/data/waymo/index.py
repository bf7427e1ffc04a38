"""The clip index: scanned segments cut into JSON-serialisable clip entries, and loading an index back.

An entry holds everything `WaymoClips.__getitem__` needs except pixels: where each clip
frame's images are (v1: the byte offset of the frame's TFRecord record; v2: the parquet row
of each camera's image), the frame timestamps, the ego states of the clip frames, the ego
track from the first clip frame to the last action time (at the source rate, for actions),
and the camera calibrations.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data.errors import DatasetError
from worldmodel.data.timeline import clip_starts, resample_indices
from worldmodel.data.waymo.cameras import planar_poses, speeds_from_positions

INDEX_VERSION = 1


@dataclass
class SegmentScan:
    """One segment's frames as scanned from its files, in timestamp order."""

    name: str
    file: str  # relative to the dataset root, posix separators
    timestamps_us: np.ndarray  # (n,) int64 microseconds
    poses: np.ndarray  # (n, 16) row-major world_from_vehicle
    locators: list[Any]  # per frame: v1 record offset (int), v2 row id per camera (list[int])
    # camera -> {"intrinsic": 9 values, "extrinsic": 16 values, "width": int, "height": int}
    calibrations: dict[str, dict[str, Any]] = field(default_factory=dict)


def clip_entries(scan: SegmentScan, fmt: str, split: str, cameras: Sequence[str], num_frames: int, fps: float,
                 stride: int | None, horizon_s: float) -> list[dict[str, Any]]:
    """The clips of `num_frames` at `fps` in a segment (none when it is too short).

    `horizon_s` is the last action time after a clip's first frame; the entry's ego track runs
    from that frame to the first source frame at or after the horizon (or the segment's end).
    """
    # Seconds since the segment's first frame: epoch seconds in float64 keep only ~1e-7 s, enough to
    # drop the last tick of a grid or to bias finite differences.
    times = (scan.timestamps_us - scan.timestamps_us[0]) * 1e-6
    states = planar_poses(scan.poses)  # (n, 3) x, y, yaw
    speeds = speeds_from_positions(times, states[:, :2])
    ticks = resample_indices(times, fps)
    entries = []
    for start in clip_starts(len(ticks), num_frames, stride):
        frames = ticks[start:start + num_frames]
        first = int(frames[0])
        end_time = max(times[int(frames[-1])], times[first] + horizon_s)
        last = min(int(np.searchsorted(times, end_time - 1e-6)), len(times) - 1)
        track = slice(first, last + 1)
        entries.append({
            "version": INDEX_VERSION,
            "dataset": "waymo",
            "format": fmt,
            "split": split,
            "segment": scan.name,
            "file": scan.file,
            "cameras": list(cameras),
            "fps": float(fps),
            "num_frames": int(num_frames),
            "frames": [scan.locators[int(k)] for k in frames],
            "timestamps_us": [int(scan.timestamps_us[k]) for k in frames],
            "poses": states[frames].tolist(),
            "speed": speeds[frames].tolist(),
            "track": {"timestamps_us": scan.timestamps_us[track].astype(int).tolist(),
                      "x": states[track, 0].tolist(), "y": states[track, 1].tolist(),
                      "yaw": states[track, 2].tolist(), "speed": speeds[track].tolist()},
            "calibrations": {name: scan.calibrations[name] for name in cameras},
        })
    return entries


def load_index(index: str | Path | Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A clip index from a JSON file (a list of entries, or {"clips": [...]}) or an in-memory list."""
    if isinstance(index, (str, Path)):
        path = Path(index)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise DatasetError(f"clip index {path} not found; write one with WaymoClips.build_index()") from err
        except json.JSONDecodeError as err:
            raise DatasetError(f"clip index {path} is not valid JSON ({err})") from err
        entries = data["clips"] if isinstance(data, dict) and "clips" in data else data
    else:
        entries = index
    if not isinstance(entries, list):
        raise DatasetError(f"a Waymo clip index is a list of clip entries, got {type(entries).__name__}")
    return [dict(e) for e in entries]


def check_entries(entries: Sequence[dict[str, Any]], split: str, cameras: Sequence[str], num_frames: int,
                  fps: float) -> list[dict[str, Any]]:
    """The entries of `split`, checked against the reader's options; a mismatch names what to rebuild."""
    kept = []
    for entry in entries:
        if entry.get("dataset") != "waymo" or entry.get("version") != INDEX_VERSION:
            raise DatasetError(f"clip index entry {entry.get('segment')!r} is not a Waymo index entry of version "
                               f"{INDEX_VERSION}; rebuild the index with WaymoClips.build_index()")
        if entry["split"] != split:
            continue
        missing = [c for c in cameras if c not in entry["cameras"]]
        if missing or entry["num_frames"] != num_frames or abs(entry["fps"] - fps) > 1e-9:
            raise DatasetError(
                f"clip index built for cameras {entry['cameras']}, {entry['num_frames']} frames at {entry['fps']} fps "
                f"does not serve cameras {list(cameras)}, {num_frames} frames at {fps} fps; rebuild the index")
        kept.append(entry)
    if not kept:
        raise DatasetError(f"the clip index has no clips of split {split!r}")
    return kept
