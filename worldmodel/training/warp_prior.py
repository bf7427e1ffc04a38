"""Warp priors for training: each clip's last reference frame moved along the ego's recorded motion.

The rollout's warp start (`worldmodel.rollout.warp_start`) begins sampling from the last frame re-rendered at
each new frame's commanded pose. Training on the same kind of input (`RectifiedFlow.warp_prior_probability`)
lets the network learn what that warp gets wrong (smeared markings, objects off the road plane, the view's new
edges) instead of meeting it first at rollout time. Here the poses are the recorded ones, which the commanded
path follows in a rollout of recorded actions.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from worldmodel.eval.ego_motion import pixel_offset_of
from worldmodel.rollout.ground_warp import pose_matrix, source_pixels, warp_frames


def relative_poses(poses: np.ndarray, origin: int) -> np.ndarray:
    """Planar world poses (T, 3) x, y, yaw -> the same poses (T, 3) in the ego frame of pose `origin`."""
    matrices = np.linalg.inv(pose_matrix(poses[origin])) @ pose_matrix(poses)  # (T, 4, 4)
    yaw = np.arctan2(matrices[:, 1, 0], matrices[:, 0, 0])
    return np.stack([matrices[:, 0, 3], matrices[:, 1, 3], yaw], axis=-1)


def _warp_target(meta: Mapping[str, Any], k: int, t: int) -> np.ndarray | None:
    """The poses (t - k, 3) of frames k .. t-1 in the ego frame of frame k-1, or None when the clip cannot be warped."""
    poses, intrinsics, extrinsics = (meta.get(key) for key in ("ego_poses", "intrinsics", "extrinsics"))
    if not 1 <= k < t or poses is None or intrinsics is None or extrinsics is None:
        return None
    return relative_poses(np.asarray(poses, np.float64), k - 1)[k:t]


def _warp_views(last: torch.Tensor, meta: Mapping[str, Any], motion: np.ndarray, far_m: float) -> torch.Tensor:
    """Every camera's frame last (V, 3, H, W) re-rendered at the poses `motion` (n, 3) -> (n, V, 3, H, W)."""
    h, w = last.shape[-2:]
    offset = pixel_offset_of(meta)
    views = []
    for view in range(last.shape[0]):
        source = source_pixels(motion, np.asarray(meta["intrinsics"][view], np.float64),
                               np.asarray(meta["extrinsics"][view], np.float64), (h, w), offset, far_m)  # (n, H, W, 2)
        views.append(warp_frames(last[view][None], source[None])[0])  # (n, 3, H, W)
    return torch.stack(views, dim=1)


def warp_prior_frames(frames: torch.Tensor, metas: Sequence[Mapping[str, Any]], num_reference: torch.Tensor,
                      far_m: float = 30.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames (B, T, V, 3, H, W) in [-1, 1] -> (prior frames of the same shape, has_prior (B,) bool).

    For a clip with k >= 1 reference frames, calibration and ego poses, frames k .. T-1 of the prior are its
    frame k-1 re-rendered at their recorded poses (road plane plus a far cylinder, `ground_warp`); every
    other frame, and every frame of a clip without what the warp needs, is the clip's own.
    """
    t = frames.shape[1]
    prior = frames.clone()
    has_prior = torch.zeros(frames.shape[0], dtype=torch.bool)
    for i, meta in enumerate(metas):
        k = int(num_reference[i])
        motion = _warp_target(meta, k, t)
        if motion is not None:
            prior[i, k:] = _warp_views(frames[i, k - 1], meta, motion, far_m)
            has_prior[i] = True
    return prior, has_prior


@torch.no_grad()
def warp_prior_latents(codec, latents: torch.Tensor, metas: Sequence[Mapping[str, Any]], num_reference: torch.Tensor,
                       far_m: float = 30.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (B, T, V, C, h, w) -> (prior latents of the same shape, has_prior (B,) bool), as the rollout makes them.

    Like `warp_prior_frames`, but the warped frame is the codec's decoding of the last reference latent and the
    warps are encoded again, exactly as the warp start does at rollout time; it needs no pixels, so it also
    serves a latent cache, and decodes one frame per camera and sample.
    """
    t = latents.shape[1]
    prior = latents.clone()
    has_prior = torch.zeros(latents.shape[0], dtype=torch.bool, device=latents.device)
    for i, meta in enumerate(metas):
        k = int(num_reference[i])
        motion = _warp_target(meta, k, t)
        if motion is None:
            continue
        last = codec.decode(latents[i, k - 1]).float()  # (V, 3, H, W)
        warped = _warp_views(last, meta, motion, far_m)  # (n, V, 3, H, W)
        prior[i, k:] = codec.encode_video(warped[None]).to(latents.dtype)[0]
        has_prior[i] = True
    return prior, has_prior
