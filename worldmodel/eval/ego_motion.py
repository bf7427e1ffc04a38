"""Ego yaw rate and speed from a front-camera video: bird's-eye views of the road plane, aligned frame to frame."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

# The road patch seen in bird's-eye view, in the ego frame (x forward, y left), and its cell size. Beyond ~12 m a
# 144-row image spans more than a metre of road per pixel; nearer than ~6 m a front camera sees no road.
BEV_X_M = (6.0, 12.0)
BEV_Y_M = (-6.0, 6.0)
BEV_CELL_M = 0.1
ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)


@dataclass(frozen=True)
class EgoMotion:
    """Per-interval ego motion estimated from frames k -> k+1 (NaN where the alignment failed)."""

    yaw_rate: np.ndarray  # (T-1,) rad/s, positive to the left
    speed: np.ndarray  # (T-1,) m/s of the ego origin
    displacement: np.ndarray  # (T-1, 2) translation over the interval in the ego frame of frame k, metres
    yaw_change: np.ndarray  # (T-1,) rad over the interval


def level_camera(height_m: float, forward_m: float = 0.0) -> np.ndarray:
    """camera_to_ego (4, 4) of a level, forward-looking camera (OpenCV axes) at `height_m` above the road."""
    t = np.eye(4)
    t[:3, :3] = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    t[:3, 3] = (forward_m, 0.0, height_m)
    return t


def bev_pixel_to_metres() -> np.ndarray:
    """(3, 3) affine from bird's-eye pixel (column, row, 1) to ego-frame road point (x, y, 1); row 0 is farthest."""
    x_far, y_left = BEV_X_M[1], BEV_Y_M[1]
    return np.array([[0.0, -BEV_CELL_M, x_far - 0.5 * BEV_CELL_M],
                     [-BEV_CELL_M, 0.0, y_left - 0.5 * BEV_CELL_M],
                     [0.0, 0.0, 1.0]])


def bev_sampling_maps(intrinsics: np.ndarray, camera_to_ego: np.ndarray,
                      pixel_offset: float) -> tuple[np.ndarray, np.ndarray]:
    """For every bird's-eye cell, the image (u, v) where the camera sees that road point (the plane homography)."""
    rows = int(round((BEV_X_M[1] - BEV_X_M[0]) / BEV_CELL_M))
    cols = int(round((BEV_Y_M[1] - BEV_Y_M[0]) / BEV_CELL_M))
    r, c = np.mgrid[0:rows, 0:cols]
    road = bev_pixel_to_metres() @ np.stack([c.ravel(), r.ravel(), np.ones(r.size)])  # (3, N): x, y, 1
    points = np.stack([road[0], road[1], np.zeros(r.size), np.ones(r.size)])  # on the plane z = 0
    camera = (np.linalg.inv(camera_to_ego) @ points)[:3]
    uv = intrinsics @ camera
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(camera[2] > 0.1, uv[0] / uv[2], -1.0) - pixel_offset
        v = np.where(camera[2] > 0.1, uv[1] / uv[2], -1.0) - pixel_offset
    return u.reshape(rows, cols).astype(np.float32), v.reshape(rows, cols).astype(np.float32)


def align(previous: np.ndarray, current: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """Euclidean warp (2, 3) with current(W x) ~ previous(x), in bird's-eye pixels; None when ECC fails."""
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        (dx, dy), _ = cv2.phaseCorrelate(previous * mask, current * mask)  # coarse translation to start from
        warp[:, 2] = (dx, dy)
        _, warp = cv2.findTransformECC(previous, current, warp, cv2.MOTION_EUCLIDEAN, ECC_CRITERIA, mask, 5)
    except cv2.error:
        return None
    return warp


def pixel_offset_of(meta: Mapping[str, Any]) -> float:
    """The `pixel_offset` of a clip's frames: the procedural renderer centres pixel j at j + 0.5, cameras at j."""
    return 0.5 if meta.get("dataset") == "synthetic" else 0.0


def estimate_ego_motion(frames: np.ndarray, intrinsics: np.ndarray, fps: float,
                        camera_to_ego: np.ndarray | None = None, camera_height_m: float = 1.55,
                        pixel_offset: float = 0.0) -> EgoMotion:
    """uint8 (T, H, W, 3) front-camera frames -> per-interval yaw rate and speed of the ego (see EgoMotion).

    intrinsics (3, 3) in pixels of these frames; camera_to_ego (4, 4) maps OpenCV camera axes to the ego frame
    (x forward, y left, z up, origin on the road); without it, a level camera `camera_height_m` above the origin.
    pixel_offset: 0 when pixel index j sits at image coordinate j (OpenCV), 0.5 when it sits at j + 0.5 (the
    procedural world's renderer). Each frame is warped to a bird's-eye view of the road, consecutive views are
    aligned by a rigid 2D transform (phase correlation, then ECC), and a static road point seen at p in the ego
    frame of frame k lies at R(-dyaw) (p - d) in frame k+1, d the ego displacement.
    """
    extrinsic = level_camera(camera_height_m) if camera_to_ego is None else np.asarray(camera_to_ego, np.float64)
    map_u, map_v = bev_sampling_maps(np.asarray(intrinsics, np.float64), extrinsic, pixel_offset)
    h, w = frames.shape[1:3]
    mask = ((map_u >= 0) & (map_u <= w - 1) & (map_v >= 0) & (map_v <= h - 1)).astype(np.uint8)
    views = [cv2.remap(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY).astype(np.float32), map_u, map_v,
                       cv2.INTER_LINEAR) for f in frames]
    to_metres = bev_pixel_to_metres()
    n = len(frames) - 1
    yaw_rate, speed, displacement = np.full(n, np.nan), np.full(n, np.nan), np.full((n, 2), np.nan)
    for i in range(n):
        warp = align(views[i], views[i + 1], mask)
        if warp is None:
            continue
        road = to_metres @ np.vstack([warp, [0.0, 0.0, 1.0]]) @ np.linalg.inv(to_metres)  # frame k -> k+1, metres
        dyaw = -float(np.arctan2(road[1, 0], road[0, 0]))
        rotation = np.array([[np.cos(dyaw), -np.sin(dyaw)], [np.sin(dyaw), np.cos(dyaw)]])
        d = -rotation @ road[:2, 2]
        yaw_rate[i], speed[i], displacement[i] = dyaw * fps, float(np.linalg.norm(d)) * fps, d
    return EgoMotion(yaw_rate, speed, displacement, yaw_rate / fps)
