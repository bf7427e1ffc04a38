"""Generate the videos of one evaluation batch: each clip's first frames forward through the rollout engine."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from worldmodel.checkpoint import LoadedWorldModel
from worldmodel.eval.ego_motion import pixel_offset_of
from worldmodel.rollout.batch import decoded_chunks, encode_references
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.rollout.jobs import calibration_of, plan_from_meta
from worldmodel.rollout.warp_start import WarpStart, checked_warp_start


def clip_plan(meta: dict[str, Any], schedule: ChunkSchedule, size: tuple[int, int], use_actions: bool) -> list:
    """Per-chunk actions from the clip's recorded ego states; with `use_actions` off, every field invalid."""
    plan = plan_from_meta(meta, schedule, size)
    if use_actions:
        return plan
    return [(values, torch.zeros_like(valid)) for values, valid in plan]


def clip_warp_start(loaded: LoadedWorldModel, schedule: ChunkSchedule, clips: Sequence[dict[str, Any]],
                    names: Sequence[str], fps: float, use_actions: bool, tau: float | None) -> WarpStart | None:
    """The warp start of a batch of clips (None when `tau` is None); a clip it cannot warp is named in a
    WarpStartError."""
    if tau is None:
        return None
    size = np.asarray(clips[0]["frames"]).shape[2:4]
    plans = [clip_plan(c["meta"], schedule, size, use_actions) for c in clips]
    calibrations = [calibration_of(c["meta"].get("intrinsics"), c["meta"].get("extrinsics"),
                                   pixel_offset_of(c["meta"])) for c in clips]
    return checked_warp_start(loaded.codec, names, calibrations, plans, fps, tau)


@torch.no_grad()
def generate_batch(loaded: LoadedWorldModel, engine: RolloutEngine, clips: Sequence[dict[str, Any]],
                   seeds: Sequence[int], num_frames: int, use_actions: bool,
                   device: torch.device, start: WarpStart | None = None) -> np.ndarray:
    """uint8 (B, num_frames, V, H, W, 3): the decoded rollout of each clip from its first reference frames.

    Noise comes from one generator per clip (seeded by its place in the protocol), so a video does not
    depend on the batch it shares. `start`: each chunk's first guess (a warp start for these clips), or None.
    """
    s = engine.schedule
    frames = [np.asarray(c["frames"]) for c in clips]
    reference = encode_references(loaded, [f[: s.first_reference] for f in frames], device)
    plans = [clip_plan(c["meta"], s, frames[0].shape[2:4], use_actions) for c in clips]
    engine.start = start
    chunks = decoded_chunks(loaded, engine, reference, plans, seeds, num_frames, device)
    return np.concatenate([decoded for _, decoded in chunks], axis=1)
