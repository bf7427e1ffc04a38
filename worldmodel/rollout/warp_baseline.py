"""The warp-last-frame baseline: the same rollout with no network, every chunk's new frames its last frame re-rendered
along the commanded path (the warp of `WarpStart`), encoded and decoded as the model's frames are.

Copy-last-frame tells whether a model predicts anything; this tells whether it predicts more than geometry does.
The warp moves the road and the scenery as the actions say but knows nothing of other cars or of what comes into
view, and each chunk magnifies the last one's pixels (docs/FINDINGS.md, "Self-forcing, and how much of the blur is the
warp's"). It exists for jobs with ground truth, calibrated cameras and a trajectory in every chunk.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from worldmodel.eval.psnr import psnr
from worldmodel.rollout.decode import decoded_chunks
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.rollout.jobs import RolloutJob
from worldmodel.rollout.warp_start import WarpStart


class WarpOnlySampler:
    """Stands in for a sampler in `RolloutEngine`: a chunk's new frames are the first guess it is handed, as is."""

    def sample(self, model: Any, reference: torch.Tensor, num_frames: int, *args: Any,
               start: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """reference (B, K, V, C, h, w) and start (B, num_frames - K, V, C, h, w) -> (B, num_frames, V, C, h, w)."""
        if start is None:
            raise ValueError("the warp baseline needs each chunk's warp as its start")
        return torch.cat([reference, start.to(reference.dtype)], dim=1)


def can_warp_all(jobs: Sequence[RolloutJob]) -> bool:
    """Whether every job has ground truth, calibrated cameras and a trajectory in every chunk."""
    return all(j.truth is not None and j.calibration is not None and all(WarpStart.can_warp(valid) for _, valid in j.plan)
               for j in jobs)


@torch.no_grad()
def warp_baseline_psnr(codec, schedule: ChunkSchedule, jobs: Sequence[RolloutJob], reference: torch.Tensor,
                       device: torch.device) -> list[list[float]] | None:
    """Per job, the PSNR (dB, mean over cameras) of each predicted frame of the warp baseline against the truth;
    None when some job of the batch has no truth, calibration or trajectory.

    reference (B, k, V, C, h, w): the jobs' encoded reference frames, as the model's rollout starts from them.
    """
    if not can_warp_all(jobs):
        return None
    start = WarpStart(codec, [j.calibration for j in jobs], jobs[0].fps, tau=1.0)
    engine = RolloutEngine(None, WarpOnlySampler(), schedule, start=start)
    truths = [j.truth() for j in jobs]
    scores: list[list[float]] = [[] for _ in jobs]
    index, k = 0, schedule.first_reference
    seeds = [0] * len(jobs)  # the warp draws no noise
    for chunk, frames in decoded_chunks(codec, engine, reference, [j.plan for j in jobs], seeds, jobs[0].num_frames,
                                        device):  # frames (B, n, V, H, W, 3), decoded as the rollout's
        for t in range(chunk.shape[1]):
            for b, truth in enumerate(truths):
                true_frame = next(truth)
                if index + t >= k:
                    scores[b].append(float(np.mean(psnr(frames[b, t], true_frame))))
        index += chunk.shape[1]
    return scores
