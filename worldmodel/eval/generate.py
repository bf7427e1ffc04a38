"""Generate the videos of one evaluation batch: each clip's first frames forward through the rollout engine."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from worldmodel.checkpoint import LoadedWorldModel
from worldmodel.rollout.actions import stack_plans
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.rollout.jobs import plan_from_meta
from worldmodel.viz import from_uint8, to_uint8


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
    depend on the batch it shares; decoding goes chunk by chunk, as the rollout engine yields them.
    """
    s = engine.schedule
    frames = [np.asarray(c["frames"]) for c in clips]
    size = frames[0].shape[2:4]
    reference = loaded.codec.encode_video(from_uint8(np.stack([f[: s.first_reference] for f in frames])).to(device))
    plans = [clip_plan(c["meta"], s, size, use_actions) for c in clips]
    plan = [(v.to(device), m.to(device)) for v, m in stack_plans(plans)]
    generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]
    decoded, written = [], 0
    for chunk in engine.stream(reference, plan, generators):
        chunk = chunk[:, : num_frames - written]
        if chunk.shape[1] == 0:
            break
        decoded.append(to_uint8(loaded.codec.decode_video(chunk.to(device)).float()))
        written += chunk.shape[1]
    return np.concatenate(decoded, axis=1)
