"""Resampling recorded frame timestamps onto a regular grid at the target fps, and clip windows."""
from __future__ import annotations

import numpy as np


def resample_indices(timestamps: np.ndarray, fps: float, tolerance: float | None = None) -> np.ndarray:
    """Source frame index nearest to each tick of a regular `fps` grid starting at the first frame.

    timestamps (n,) seconds, increasing -> (m,) int64 indices. The grid stops at the last frame;
    a tick whose nearest frame is further than `tolerance` (default half a tick) away ends the grid
    there, so a gap in the recording never silently repeats or skips time. Never upsamples past
    the source: consecutive ticks may pick the same frame only if the source is slower than `fps`,
    which the tolerance forbids by default.
    """
    t = np.asarray(timestamps, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"timestamps must be a non-empty 1-D array, got shape {t.shape}")
    if np.any(np.diff(t) <= 0):
        raise ValueError("timestamps must be strictly increasing")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    step = 1.0 / fps
    tol = 0.5 * step if tolerance is None else tolerance
    ticks = t[0] + step * np.arange(int(np.floor((t[-1] - t[0]) / step + 1e-9)) + 1)
    right = np.clip(np.searchsorted(t, ticks), 1, t.size - 1) if t.size > 1 else np.zeros(ticks.size, dtype=int)
    left = np.maximum(right - 1, 0)
    nearest = np.where(np.abs(t[left] - ticks) <= np.abs(t[right] - ticks), left, right)
    off = np.abs(t[nearest] - ticks) > tol + 1e-9
    if off.any():
        nearest = nearest[: int(np.argmax(off))]
    return nearest.astype(np.int64)


def clip_starts(num_ticks: int, num_frames: int, stride: int | None = None) -> np.ndarray:
    """Start ticks of the clips of `num_frames` that fit in `num_ticks`, every `stride` ticks (default: no overlap)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    stride = num_frames if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if num_ticks < num_frames:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, num_ticks - num_frames + 1, stride, dtype=np.int64)
