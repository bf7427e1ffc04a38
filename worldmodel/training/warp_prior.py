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


def warp_prior_frames(frames: torch.Tensor, metas: Sequence[Mapping[str, Any]], num_reference: torch.Tensor,
                      far_m: float = 30.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames (B, T, V, 3, H, W) in [-1, 1] -> (prior frames of the same shape, has_prior (B,) bool).

    For a clip with k >= 1 reference frames, calibration and ego poses, frames k .. T-1 of the prior are its
    frame k-1 re-rendered at their recorded poses (road plane plus a far cylinder, `ground_warp`); every
    other frame, and every frame of a clip without what the warp needs, is the clip's own.
    """
    b, t, v, _, h, w = frames.shape
    prior = frames.clone()
    has_prior = torch.zeros(b, dtype=torch.bool)
    for i in range(b):
        k, meta = int(num_reference[i]), metas[i]
        poses, intrinsics, extrinsics = (meta.get(key) for key in ("ego_poses", "intrinsics", "extrinsics"))
        if not 1 <= k < t or poses is None or intrinsics is None or extrinsics is None:
            continue
        motion = relative_poses(np.asarray(poses, np.float64), k - 1)[k:t]  # (n, 3)
        offset = pixel_offset_of(meta)
        for view in range(v):
            source = source_pixels(motion, np.asarray(intrinsics[view], np.float64),
                                   np.asarray(extrinsics[view], np.float64), (h, w), offset, far_m)  # (n, H, W, 2)
            prior[i, k:, view] = warp_frames(frames[i, k - 1, view][None], source[None])[0]
        has_prior[i] = True
    return prior, has_prior
