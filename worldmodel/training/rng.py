"""The process's random number generator states, saved in checkpoints and restored on resume.

Training draws its noise from per-sample keys (worldmodel.training.sampler), so these states
matter only to what still uses the global generators (dropout in a user's model, augmentation).
A checkpoint holds rank 0's states; every rank restores them.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def collect_rng_states() -> dict[str, Any]:
    """torch (CPU and every CUDA device), numpy and python generator states."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    # Plain types only: checkpoints must load with torch.load(weights_only=True), which refuses numpy arrays.
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                              "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the generators from `collect_rng_states()` output (CUDA only where both sides have it)."""
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
