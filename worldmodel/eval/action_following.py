"""Action following: does a generated front-camera video move the way its commanded actions say?"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from worldmodel.eval.ego_motion import EgoMotion, estimate_ego_motion


def integrate(motion: EgoMotion) -> np.ndarray:
    """Per-interval displacements and yaw rates -> ego poses (T, 3) (x, y, yaw) relative to the first frame.

    Intervals where the estimate failed (NaN) are filled with the median of the others.
    """
    yaw_change, displacement = motion.yaw_change.copy(), motion.displacement.copy()
    ok = np.isfinite(yaw_change)
    if not ok.any():
        return np.full((len(yaw_change) + 1, 3), np.nan)
    yaw_change[~ok] = np.median(yaw_change[ok])
    displacement[~ok] = np.median(displacement[ok], axis=0)
    poses = np.zeros((len(yaw_change) + 1, 3))
    for i, (d, turn) in enumerate(zip(displacement, yaw_change)):
        x, y, yaw = poses[i]
        c, s = np.cos(yaw), np.sin(yaw)
        poses[i + 1] = (x + c * d[0] - s * d[1], y + s * d[0] + c * d[1], yaw + turn)
    return poses


def action_following(frames: np.ndarray, actions: Mapping[str, Any], intrinsics: np.ndarray, fps: float,
                     origin_frame: int, action_times: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0),
                     camera_to_ego: np.ndarray | None = None, pixel_offset: float = 0.0) -> dict[str, float]:
    """Compare the ego motion seen in uint8 (T, H, W, 3) front-camera frames with the commanded actions.

    actions: the data contract's fields (`trajectory` (4, 2) ego-frame metres at `action_times` after
    `origin_frame`, `speed` (4,) m/s, and `valid`). Returns trajectory ADE / FDE in metres, the heading error of
    the final waypoint direction in radians, speed MAE in m/s, and the mean estimated / commanded yaw rates
    (rad/s, the commanded one from the trajectory's final heading); NaN where a field is invalid or the clip
    is too short.
    """
    motion = estimate_ego_motion(frames, intrinsics, fps, camera_to_ego=camera_to_ego, pixel_offset=pixel_offset)
    poses = integrate(motion)
    valid = actions.get("valid", {})
    times = origin_frame + np.asarray(action_times) * fps  # fractional frame indices of the action times
    out = {"trajectory_ade_m": np.nan, "trajectory_fde_m": np.nan, "heading_error_rad": np.nan,
           "speed_mae_mps": np.nan, "yaw_rate_estimated": np.nan, "yaw_rate_commanded": np.nan}
    if times[-1] > len(frames) - 1 or not np.isfinite(poses).all():
        return out
    frame_index = np.arange(len(poses))
    origin = poses[origin_frame]
    c, s = np.cos(origin[2]), np.sin(origin[2])
    world = np.stack([np.interp(times, frame_index, poses[:, k]) for k in range(2)], axis=-1) - origin[:2]
    seen = np.stack([c * world[:, 0] + s * world[:, 1], -s * world[:, 0] + c * world[:, 1]], axis=-1)  # (4, 2)
    if valid.get("trajectory", False):
        commanded = np.asarray(actions["trajectory"], np.float64)
        error = np.linalg.norm(seen - commanded, axis=1)
        out["trajectory_ade_m"], out["trajectory_fde_m"] = float(error.mean()), float(error[-1])
        out["heading_error_rad"] = float(np.angle(np.exp(1j * (np.arctan2(seen[-1, 1], seen[-1, 0])
                                                               - np.arctan2(commanded[-1, 1], commanded[-1, 0])))))
        # A constant-curvature arc to the final waypoint turns by twice its bearing.
        out["yaw_rate_commanded"] = float(2 * np.arctan2(commanded[-1, 1], commanded[-1, 0]) / action_times[-1])
        out["yaw_rate_estimated"] = float(2 * np.arctan2(seen[-1, 1], seen[-1, 0]) / action_times[-1])
    if valid.get("speed", False):
        speed = np.interp(times - 0.5, np.arange(len(motion.speed)), np.nan_to_num(motion.speed))
        out["speed_mae_mps"] = float(np.abs(speed - np.asarray(actions["speed"], np.float64)).mean())
    return out
