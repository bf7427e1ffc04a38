"""Generate the videos of one evaluation batch: each clip's first frames forward through the rollout engine."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from worldmodel.checkpoint import LoadedWorldModel
from worldmodel.diffusion.prediction import takes_warp
from worldmodel.eval.ego_motion import pixel_offset_of
from worldmodel.rollout.batch import encode_references
from worldmodel.rollout.decode import decoded_chunks
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.rollout.jobs import calibration_of, plan_from_meta
from worldmodel.rollout.warp_start import WarpStart, checked_warp_start


def clip_plan(meta: dict[str, Any], schedule: ChunkSchedule, size: tuple[int, int], use_actions: bool) -> list:
    """Per-chunk actions from the clip's recorded ego states; with `use_actions` off, every field invalid."""
    plan = plan_from_meta(meta, schedule, size)
    if use_actions:
        return plan
    return [(values, torch.zeros_like(valid)) for values, valid in plan]


def clip_plans(clips: Sequence[dict[str, Any]], schedule: ChunkSchedule, use_actions: bool) -> list[list]:
    """Each clip's per-chunk actions (`clip_plan`), for the warp start and the generation of one batch."""
    size = np.asarray(clips[0]["frames"]).shape[2:4]
    return [clip_plan(c["meta"], schedule, size, use_actions) for c in clips]


def clip_warp_start(loaded: LoadedWorldModel, clips: Sequence[dict[str, Any]], plans: Sequence[list],
                    names: Sequence[str], fps: float, tau: float | None) -> WarpStart | None:
    """The warp of a batch of clips with their `clip_plans` (None when neither `tau` nor a warp-conditioned model
    asks for it); with `tau`, a clip it cannot warp is named in a WarpStartError."""
    calibrations = [calibration_of(c["meta"].get("intrinsics"), c["meta"].get("extrinsics"),
                                   pixel_offset_of(c["meta"])) for c in clips]
    return checked_warp_start(loaded.codec, names, calibrations, plans, fps, tau, condition=takes_warp(loaded.model))


@torch.no_grad()
def generate_batch(loaded: LoadedWorldModel, engine: RolloutEngine, clips: Sequence[dict[str, Any]],
                   plans: Sequence[list], seeds: Sequence[int], num_frames: int,
                   device: torch.device, start: WarpStart | None = None) -> np.ndarray:
    """uint8 (B, num_frames, V, H, W, 3): the decoded rollout of each clip from its first reference frames.

    plans: each clip's `clip_plans`. Noise comes from one generator per clip (seeded by its place in the
    protocol), so a video does not depend on the batch it shares. `start`: each chunk's first guess (a warp
    start for these clips), or None.
    """
    s = engine.schedule
    reference = encode_references(loaded, [np.asarray(c["frames"])[: s.first_reference] for c in clips], device)
    engine.start = start
    chunks = decoded_chunks(loaded.codec, engine, reference, plans, seeds, num_frames, device)
    return np.concatenate([decoded for _, decoded in chunks], axis=1)
