"""Warp start: begin each chunk's sampling from its last reference frame moved along the commanded ego path.

A training-free action prior in the spirit of SDEdit and of warp-then-denoise camera control: the last
reference frame of every camera is re-rendered at each new frame's commanded ego pose (`ground_warp`: road
plane plus a far cylinder), encoded, noised to `tau` and denoised by the model from there. The warp fixes
where the road is, so the video moves as the actions say even where the model alone would hold the
picture still (a small model trained for minutes; docs/FINDINGS.md "Warp start"); the model draws what the
warp gets wrong (buildings and cars, which are not on the road plane, and the view's new edges).
At tau = 1 the warp is drowned in noise and sampling is the plain sampler's.

A model built with `warp_condition` (our extension) also takes the same warp, clean, as an input of every new
frame; its rollouts then warp every chunk whether or not sampling starts from the warp (`tau` None).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from worldmodel.data.actions import DEFAULT_ACTION_TIMES
from worldmodel.rollout.action_path import TRAJECTORY_GROUP, chunk_motion
from worldmodel.rollout.ground_warp import source_pixels, warp_frames

log = logging.getLogger(__name__)


class WarpStartError(ValueError):
    """A warp start asked of something it cannot warp (no calibration, no trajectory, a bad time)."""


def check_warp_tau(tau: float) -> float:
    """`tau` as a float, or a WarpStartError when it is not a diffusion time in (0, 1]."""
    if not 0.0 < float(tau) <= 1.0:
        raise WarpStartError(f"warp_start must be a diffusion time in (0, 1] (where sampling begins), got {tau}")
    return float(tau)


@dataclass(frozen=True)
class CameraCalibration:
    """A job's cameras: intrinsics (V, 3, 3) in pixels of its frames, camera_to_ego (V, 4, 4, OpenCV axes)."""

    intrinsics: np.ndarray
    camera_to_ego: np.ndarray
    pixel_offset: float  # where the intrinsics put pixel j's centre: j + offset

    def key(self) -> tuple:
        return (self.intrinsics.tobytes(), self.camera_to_ego.tobytes(), self.pixel_offset)


def warp_views(last: torch.Tensor, motion: np.ndarray, calibration: CameraCalibration, far_m: float = 30.0,
               source: Callable[[np.ndarray, CameraCalibration, int, tuple[int, int]], np.ndarray] | None = None
               ) -> torch.Tensor:
    """Every camera's frame last (V, 3, H, W) re-rendered at the ego poses `motion` (n, 3) -> (n, V, 3, H, W).

    `source(motion, calibration, view, size)` gives the sampling grid (default: `ground_warp.source_pixels`
    with `far_m`); WarpStart passes its cached one.
    """
    if source is None:
        def source(m: np.ndarray, c: CameraCalibration, view: int, size: tuple[int, int]) -> np.ndarray:
            return source_pixels(m, c.intrinsics[view], c.camera_to_ego[view], size, c.pixel_offset, far_m)
    size = tuple(last.shape[-2:])
    return torch.stack([warp_frames(last[view][None], source(motion, calibration, view, size)[None])[0]
                        for view in range(last.shape[0])], dim=1)


class WarpStart:
    """First guesses of a chunk's new frames, one calibration per batch item; `tau` is where sampling begins
    (None: sampling begins from pure noise, and the warp only feeds a warp-conditioned model)."""

    def __init__(self, codec, calibrations: Sequence[CameraCalibration], fps: float, tau: float | None,
                 far_m: float = 30.0, action_times: Sequence[float] = DEFAULT_ACTION_TIMES) -> None:
        tau = None if tau is None else check_warp_tau(tau)
        if far_m <= 0:
            raise ValueError(f"far_m must be > 0, got {far_m}")
        self.codec, self.calibrations, self.fps, self.tau = codec, list(calibrations), float(fps), tau
        self.far_m, self.action_times = float(far_m), tuple(action_times)
        self._grids: dict[tuple, np.ndarray] = {}  # motions repeat (a scenario's straight cruise): reuse their grids

    def _source(self, motion: np.ndarray, calibration: CameraCalibration, view: int,
                size: tuple[int, int]) -> np.ndarray:
        key = (motion.round(6).tobytes(), calibration.key(), view, size)
        if key not in self._grids:
            self._grids[key] = source_pixels(motion, calibration.intrinsics[view], calibration.camera_to_ego[view],
                                             size, calibration.pixel_offset, self.far_m)
            if len(self._grids) > 256:
                self._grids.pop(next(iter(self._grids)))
        return self._grids[key]

    @staticmethod
    def can_warp(valid: torch.Tensor) -> bool:
        """Whether every batch item of a chunk with action flags valid (B, 5) has a commanded path to warp along."""
        return bool(valid[..., TRAJECTORY_GROUP].all())

    @torch.no_grad()
    def __call__(self, refs: torch.Tensor, values: torch.Tensor, valid: torch.Tensor,
                 chunk_frames: int) -> torch.Tensor:
        """refs (B, k, V, C, h, w) latents; the chunk's actions (B, 19) / (B, 5) -> (B, chunk_frames - k, V, C, h, w).

        The references are the chunk's frames 0 .. k-1 and its actions start at frame 0 (the rollout's plan),
        so the last reference sits (k - 1) / fps seconds along the commanded path.
        """
        b, k = refs.shape[:2]
        if len(self.calibrations) != b:
            raise ValueError(f"got {len(self.calibrations)} camera calibrations for a batch of {b}")
        motion = chunk_motion(values, valid, k - 1, range(k, chunk_frames), self.fps, self.action_times)  # (B, n, 3)
        last = self.codec.decode_video(refs[:, k - 1 :]).float()[:, 0]  # (B, V, 3, H, W)
        warped = torch.stack([warp_views(last[i], motion[i], self.calibrations[i], source=self._source)
                              for i in range(b)])  # (B, n, V, 3, H, W)
        return self.codec.encode_video(warped.to(refs.device)).to(refs.dtype)  # (B, n, V, C, h, w)


def checked_warp_start(codec, names: Sequence[str], calibrations: Sequence[CameraCalibration | None],
                       plans: Sequence[Sequence[tuple[torch.Tensor, torch.Tensor]]], fps: float,
                       tau: float | None, condition: bool = False) -> WarpStart | None:
    """The warp of a batch, or None when neither a warp start (`tau`) nor a warp-conditioned model (`condition`)
    asks for it.

    names, calibrations and plans (per-chunk (values, valid) actions) are per batch item. With `tau`, an item it
    cannot warp is named in a WarpStartError; callers run this before they write anything, so a refusal leaves
    no partial files. For the condition alone, such a batch is sampled without its warp (the model trained
    without it on a fraction of its clips), with a warning naming the item.
    """
    if tau is None and not condition:
        return None
    for name, calibration, plan in zip(names, calibrations, plans, strict=True):
        problem = None
        if calibration is None:
            problem = (f"needs every camera's intrinsics and extrinsics; {name} has none (image and video sources "
                       "carry no calibration)")
        elif not all(WarpStart.can_warp(valid) for _, valid in plan):
            problem = (f"follows the actions' trajectory; {name} has chunks without one (a clip without ego states, "
                       "or actions switched off)")
        if problem is not None and tau is not None:
            raise WarpStartError(f"warp_start {problem}: run it with warp_start=null")
        if problem is not None:
            log.warning("this warp-conditioned model samples the batch without its warp: the warp %s", problem)
            return None
    return WarpStart(codec, list(calibrations), fps, tau)
