"""Stream a batch's rollout chunk by chunk, each chunk's latents with their decoded frames."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from worldmodel.rollout.actions import stack_plans
from worldmodel.rollout.engine import RolloutEngine
from worldmodel.viz import to_uint8


def decoded_chunks(codec, engine: RolloutEngine, reference: torch.Tensor, plans: Sequence[list], seeds: Sequence[int],
                   num_frames: int, device: torch.device, progress: bool = False
                   ) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Roll a batch out and yield each chunk's new latents (B, n, V, C, h, w) with their frames uint8 (B, n, V, H, W, 3).

    One noise generator per video (seeded by `seeds`), so a video does not depend on its batch mates;
    the video is cut at `num_frames` and no chunk past it is sampled.
    """
    plan = [(v.to(device), m.to(device)) for v, m in stack_plans(list(plans))]
    generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]
    written = 0
    for chunk in engine.stream(reference, plan, generators, progress=progress):
        chunk = chunk[:, : num_frames - written]  # the last chunk may reach past the horizon
        if chunk.shape[1] == 0:
            break
        yield chunk, to_uint8(codec.decode_video(chunk.to(device)).float())
        written += chunk.shape[1]
