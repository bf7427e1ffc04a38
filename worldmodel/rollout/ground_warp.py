"""Re-render a camera frame from a moved ego pose, assuming the scene is a flat road inside a vertical cylinder.

Without depth, a driving frame is well approximated by two surfaces: the road plane z = 0 of the ego frame
(everything below the horizon that is near) and, for the rest (sky, buildings, distant road), a vertical
cylinder of radius `far_m` around the new camera. Each pixel of the new view casts its ray onto the nearer of
the two, and takes the colour that the old camera saw at that point (a backward warp: every output pixel is
defined). Where the old camera did not see the point (outside its frame or behind it) the pixel keeps the old
frame's colour at the same place: on the 8 procedural test clips that is as good as repeating the nearest edge
for the front camera and better for the back one (the road behind a car that drove forward was never in its
back camera's frame, and the edge it projects to is often sky). The road, which carries most of the motion cues of a driving video, then moves exactly as the ego does.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Rays closer to horizontal than this never reach the road plane within any sensible distance.
_MIN_DROP = 1e-4


def pose_matrix(pose: np.ndarray) -> np.ndarray:
    """Planar poses (..., 3) x, y, yaw -> homogeneous (..., 4, 4) ego-to-origin transforms (z unchanged)."""
    pose = np.asarray(pose, np.float64)
    out = np.zeros((*pose.shape[:-1], 4, 4))
    c, s = np.cos(pose[..., 2]), np.sin(pose[..., 2])
    out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1] = c, -s, s, c
    out[..., 0, 3], out[..., 1, 3] = pose[..., 0], pose[..., 1]
    out[..., 2, 2] = out[..., 3, 3] = 1.0
    return out


def rigid_inverse(transform: np.ndarray) -> np.ndarray:
    """The inverse of rigid transforms (..., 4, 4) as [R^T, -R^T t].

    Written out rather than np.linalg.inv: LAPACK's threads contend with torch's during training, where a 4x4
    inverse then took half a millisecond, a tenth of a training step's warps.
    """
    rotation_t = np.swapaxes(transform[..., :3, :3], -1, -2)
    out = np.zeros_like(transform, dtype=np.float64)
    out[..., :3, :3] = rotation_t
    out[..., :3, 3] = -(rotation_t @ transform[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def _intrinsics_inverse(k: np.ndarray) -> np.ndarray:
    """The inverse of a pinhole matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]], written out (see rigid_inverse)."""
    if k[1, 0] != 0 or k[2, 0] != 0 or k[2, 1] != 0 or k[2, 2] != 1:
        return np.linalg.inv(k)
    fx, s, cx, fy, cy = k[0, 0], k[0, 1], k[0, 2], k[1, 1], k[1, 2]
    return np.array([[1 / fx, -s / (fx * fy), (s * cy - cx * fy) / (fx * fy)],
                     [0.0, 1 / fy, -cy / fy],
                     [0.0, 0.0, 1.0]])


def source_pixels(motion: np.ndarray, intrinsics: np.ndarray, camera_to_ego: np.ndarray, size: tuple[int, int],
                  pixel_offset: float, far_m: float = 30.0) -> np.ndarray:
    """Where each pixel of the moved camera looks in the unmoved one: (n, H, W, 2) pixel (column, row) coordinates.

    motion (n, 3): the new ego poses x, y, yaw in the ego frame of the old one; intrinsics (3, 3) and
    camera_to_ego (4, 4, OpenCV camera axes) of one camera, the same before and after; size (H, W);
    `pixel_offset`: where the intrinsics put pixel j's centre (j + offset; 0.5 for the procedural renderer).
    Coordinates are pixel indices (column j's centre at j). A pixel whose point the old camera did not see (outside
    its frame, or behind it) keeps its own position: the old frame's colour there.
    """
    h, w = size
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    pixels = np.stack([cols.ravel() + pixel_offset, rows.ravel() + pixel_offset, np.ones(h * w)])  # (3, HW)
    rays = camera_to_ego[:3, :3] @ _intrinsics_inverse(intrinsics) @ pixels  # (3, HW) in the new ego frame
    ego_to_camera = rigid_inverse(camera_to_ego)
    out = np.empty((len(motion), h, w, 2))
    for i, new_to_old in enumerate(pose_matrix(motion)):
        origin = new_to_old[:3, :3] @ camera_to_ego[:3, 3] + new_to_old[:3, 3]  # (3,) camera centre, old ego frame
        direction = new_to_old[:3, :3] @ rays  # (3, HW)
        # A ray straight up meets neither surface: its point is not finite, and `seen` below drops it.
        with np.errstate(divide="ignore", invalid="ignore"):
            to_road = np.where(direction[2] < -_MIN_DROP, origin[2] / -direction[2], np.inf)
            to_cylinder = far_m / np.hypot(direction[0], direction[1])
            reach = np.minimum(to_road, to_cylinder)
            points = origin[:, None] + reach * direction  # (3, HW) in the old ego frame
            camera = ego_to_camera[:3, :3] @ points + ego_to_camera[:3, 3:4]
            uv = intrinsics @ camera
            u, v = uv[0] / uv[2] - pixel_offset, uv[1] / uv[2] - pixel_offset
        seen = (camera[2] > 1e-3) & (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
        u, v = np.where(seen, u, cols.ravel()), np.where(seen, v, rows.ravel())
        out[i] = np.stack([u, v], axis=-1).reshape(h, w, 2)
    return out


def warp_frames(frames: torch.Tensor, source: np.ndarray) -> torch.Tensor:
    """frames (B, C, H, W), source pixel coordinates (B, n, H, W, 2) -> (B, n, C, H, W), bilinear (edges repeated
    for the half pixel beyond the outer centres)."""
    b, c, h, w = frames.shape
    n = source.shape[1]
    grid = torch.as_tensor(source, dtype=torch.float32, device=frames.device)  # (B, n, H, W, 2)
    # grid_sample's normalised coordinates (align_corners=False): -1 and 1 are the outer edges of the border pixels.
    scale = torch.tensor([2.0 / w, 2.0 / h], device=frames.device)
    grid = ((grid + 0.5) * scale - 1.0).clamp(-2.0, 2.0)
    repeated = frames[:, None].expand(b, n, c, h, w).reshape(b * n, c, h, w)
    out = F.grid_sample(repeated.float(), grid.reshape(b * n, h, w, 2), mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out.reshape(b, n, c, h, w).to(frames.dtype)
