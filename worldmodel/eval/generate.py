"""Generate the videos of one evaluation batch: each clip's first frames forward through the rollout engine."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from worldmodel.checkpoint import LoadedWorldModel
from worldmodel.rollout.batch import decoded_chunks, encode_references
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.rollout.jobs import plan_from_meta


def clip_plan(meta: dict[str, Any], schedule: ChunkSchedule, size: tuple[int, int], use_actions: bool) -> list:
    """Per-chunk actions from the clip's recorded ego states; with `use_actions` off, every field invalid."""
    plan = plan_from_meta(meta, schedule, size)
    if use_actions:
        return plan
    return [(values, torch.zeros_like(valid)) for values, valid in plan]


@torch.no_grad()
def generate_batch(loaded: LoadedWorldModel, engine: RolloutEngine, clips: Sequence[dict[str, Any]],
                   seeds: Sequence[int], num_frames: int, use_actions: bool,
                   device: torch.device) -> np.ndarray:
    """uint8 (B, num_frames, V, H, W, 3): the decoded rollout of each clip from its first reference frames.

    Noise comes from one generator per clip (seeded by its place in the protocol), so a video does not
    depend on the batch it shares.
    """
    s = engine.schedule
    frames = [np.asarray(c["frames"]) for c in clips]
    reference = encode_references(loaded, [f[: s.first_reference] for f in frames], device)
    plans = [clip_plan(c["meta"], s, frames[0].shape[2:4], use_actions) for c in clips]
    chunks = decoded_chunks(loaded, engine, reference, plans, seeds, num_frames, device)
    return np.concatenate([decoded for _, decoded in chunks], axis=1)
