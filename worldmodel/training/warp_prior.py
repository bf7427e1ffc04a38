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

from worldmodel.data.actions import relative_pose
from worldmodel.eval.ego_motion import pixel_offset_of
from worldmodel.rollout.jobs import calibration_of
from worldmodel.rollout.warp_start import CameraCalibration, warp_views


def relative_poses(poses: np.ndarray, origin: int) -> np.ndarray:
    """Planar world poses (T, 3) x, y, yaw -> the same poses (T, 3) in the ego frame of pose `origin`."""
    return relative_pose(poses[origin], poses)


def _warp_target(meta: Mapping[str, Any], k: int, t: int) -> tuple[np.ndarray, CameraCalibration] | None:
    """The poses (t - k, 3) of frames k .. t-1 in the ego frame of frame k-1 and the clip's cameras, or None when
    the clip cannot be warped (no reference or no later frame, no ego poses, no calibration)."""
    calibration = calibration_of(meta.get("intrinsics"), meta.get("extrinsics"), pixel_offset_of(meta))
    poses = meta.get("ego_poses")
    if not 1 <= k < t or poses is None or calibration is None:
        return None
    return relative_poses(np.asarray(poses, np.float64), k - 1)[k:t], calibration


@torch.no_grad()
def warp_prior_latents(codec, latents: torch.Tensor, metas: Sequence[Mapping[str, Any]], num_reference: torch.Tensor,
                       far_m: float = 30.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (B, T, V, C, h, w) -> (prior latents of the same shape, has_prior (B,) bool).

    For a clip with k >= 1 reference frames, calibration and ego poses, frames k .. T-1 of the prior are its last
    reference latent decoded, re-rendered at their recorded poses (road plane plus a far cylinder, `warp_views`)
    and encoded again, exactly as the warp start does at rollout time; every other frame, and every frame of a
    clip without what the warp needs, is the clip's own. It needs no pixels, so a latent cache serves too.
    """
    t = latents.shape[1]
    prior = latents.clone()
    has_prior = torch.zeros(latents.shape[0], dtype=torch.bool, device=latents.device)
    for i, meta in enumerate(metas):
        k = int(num_reference[i])
        target = _warp_target(meta, k, t)
        if target is None:
            continue
        last = codec.decode(latents[i, k - 1]).float()  # (V, 3, H, W)
        warped = warp_views(last, *target, far_m=far_m)  # (n, V, 3, H, W)
        prior[i, k:] = codec.encode_video(warped[None]).to(latents.dtype)[0]
        has_prior[i] = True
    return prior, has_prior
