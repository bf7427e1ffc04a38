"""The warp-last-frame baseline: without motion it is copy-last-frame, on a driving clip it beats it, and jobs it
cannot warp get none."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from worldmodel.codecs import DCTCodec
from worldmodel.data.synthetic import SyntheticDriving
from worldmodel.eval.psnr import psnr
from worldmodel.rollout.engine import ChunkSchedule
from worldmodel.rollout.jobs import clip_job
from worldmodel.rollout.warp_baseline import WarpOnlySampler, warp_baseline_psnr
from worldmodel.viz import from_uint8

# One coefficient per colour and pixel: latents carry the frames exactly, so only the warp differs from copying.
LOSSLESS = DCTCodec(block=1, luma=1, chroma=1)
FRAMES = 10
# The clip runs 2.1 s past the video, so the last chunk's actions (2 s ahead of its first frame) can be measured.
CLIP_FRAMES = FRAMES + 7
SCHEDULE = ChunkSchedule.for_horizon(chunk_frames=4, first_reference=1, carry_frames=2, total_frames=FRAMES)


def _clip(index: int = 0, still: bool = False) -> dict:
    clip = SyntheticDriving(num_clips=index + 1, num_frames=CLIP_FRAMES, fps=3.3333, views="front", size=(32, 64), seed=0,
                            split="val")[index]
    if still:  # the recorded ego stands at its first pose, so every chunk's commanded path is standing still
        meta = clip["meta"]
        poses = np.repeat(meta["ego_poses"][:1], CLIP_FRAMES, axis=0)
        clip = {**clip, "meta": {**meta, "ego_poses": poses, "ego_speed": np.zeros(CLIP_FRAMES)}}
    return clip


def _scores(jobs) -> list[list[float]] | None:
    reference = LOSSLESS.encode_video(from_uint8(np.stack([j.reference for j in jobs])))
    return warp_baseline_psnr(LOSSLESS, SCHEDULE, jobs, reference, torch.device("cpu"))


def _copy_scores(clip: dict) -> list[float]:
    frames = clip["frames"]
    return [float(np.mean(psnr(frames[0], frames[t]))) for t in range(1, FRAMES)]


def test_standing_still_the_warp_is_copying() -> None:
    clip = _clip(still=True)
    scores = _scores([clip_job("still", clip, SCHEDULE, 1, FRAMES, seed=0)])
    assert scores is not None and len(scores[0]) == FRAMES - 1
    np.testing.assert_allclose(scores[0], _copy_scores(clip), atol=0.05)


def test_on_a_driving_clip_the_warp_beats_copying() -> None:
    clips = [_clip(0), _clip(1)]
    scores = _scores([clip_job(f"clip{i}", c, SCHEDULE, 1, FRAMES, seed=i) for i, c in enumerate(clips)])
    for clip, own in zip(clips, scores):
        assert len(own) == FRAMES - 1
        # The first chunk warps the real frame: geometry alone predicts the road better than holding it still.
        assert np.mean(own[:3]) > np.mean(_copy_scores(clip)[:3]) + 0.3, (own[:3], _copy_scores(clip)[:3])


def test_jobs_it_cannot_warp_get_no_baseline() -> None:
    job = clip_job("clip", _clip(), SCHEDULE, 1, FRAMES, seed=0)
    assert _scores([job, dataclasses.replace(job, calibration=None)]) is None
    assert _scores([dataclasses.replace(job, truth=None)]) is None


def test_warp_only_sampler_returns_the_start_after_the_references() -> None:
    reference, start = torch.randn(2, 1, 1, 16, 4, 8), torch.randn(2, 3, 1, 16, 4, 8)
    out = WarpOnlySampler().sample(None, reference, 4, start=start)
    torch.testing.assert_close(out, torch.cat([reference, start], dim=1), atol=0, rtol=0)
    with pytest.raises(ValueError, match="needs each chunk's warp"):
        WarpOnlySampler().sample(None, reference, 4)
