"""The ego path that a Vista action vector describes: poses (x, y, yaw) at any time after its origin.

The trajectory field holds four waypoints (at `action_times`, default 0.5 ... 2.0 s) in the ego frame of the
action origin (x forward, y left). Between them the path is a cubic Hermite curve whose tangents are Catmull-Rom
differences, except at the origin, where the ego by definition heads along +x, and at the last waypoint (the
tangent of a parabola through the last segment); past the last waypoint it goes on straight along that
tangent. The heading is the direction of the path's derivative, held while the ego stands still (a stopped
car has no direction of travel to read).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from worldmodel.data.actions import ACTION_FIELDS, DEFAULT_ACTION_TIMES, field_slice, relative_pose

# Below this speed the path's direction is noise; the heading then stays where it was.
STANDSTILL_MPS = 0.3


TRAJECTORY = field_slice("trajectory")
TRAJECTORY_GROUP = ACTION_FIELDS.index("trajectory")


def _hermite(t: np.ndarray, knots: np.ndarray, points: np.ndarray,
             tangents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities (n, 2) at times t (n,) of the Hermite curve through points (m, 2) at knots (m,)."""
    i = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, len(knots) - 2)
    h = knots[i + 1] - knots[i]
    s = ((t - knots[i]) / h)[:, None]
    p0, p1, m0, m1 = points[i], points[i + 1], tangents[i] * h[:, None], tangents[i + 1] * h[:, None]
    position = ((2 * s**3 - 3 * s**2 + 1) * p0 + (s**3 - 2 * s**2 + s) * m0
                + (-2 * s**3 + 3 * s**2) * p1 + (s**3 - s**2) * m1)
    velocity = ((6 * s**2 - 6 * s) * p0 + (3 * s**2 - 4 * s + 1) * m0
                + (-6 * s**2 + 6 * s) * p1 + (3 * s**2 - 2 * s) * m1) / h[:, None]
    return position, velocity


def path_poses(trajectory: np.ndarray, times: Sequence[float],
               action_times: Sequence[float] = DEFAULT_ACTION_TIMES) -> np.ndarray:
    """Waypoints (m, 2) at `action_times` -> poses (n, 3) x, y, yaw at `times` (seconds after the origin, >= 0)."""
    knots = np.concatenate([[0.0], np.asarray(action_times, np.float64)])
    points = np.concatenate([np.zeros((1, 2)), np.asarray(trajectory, np.float64).reshape(-1, 2)])
    if len(points) != len(knots):
        raise ValueError(f"trajectory has {len(points) - 1} waypoints for {len(knots) - 1} action times")
    t = np.asarray(times, np.float64)
    if (t < 0).any():
        raise ValueError(f"times must be >= 0 (after the action origin), got {t.min()}")
    tangents = np.empty_like(points)
    tangents[1:-1] = (points[2:] - points[:-2]) / (knots[2:] - knots[:-2])[:, None]
    # At the end, the tangent of the parabola through the last segment that meets the previous tangent: on an
    # arc that is the arc's own tangent, where the last chord's direction would lag half a segment behind.
    tangents[-1] = 2 * (points[-1] - points[-2]) / (knots[-1] - knots[-2]) - tangents[-2]
    tangents[0] = (np.linalg.norm(points[1] - points[0]) / (knots[1] - knots[0]), 0.0)
    inside = np.minimum(t, knots[-1])
    position, velocity = _hermite(inside, knots, points, tangents)
    beyond = (t - inside)[:, None]
    position = position + beyond * tangents[-1]
    velocity = np.where(beyond > 0, tangents[-1], velocity)

    order = np.argsort(t, kind="stable")
    yaw = np.zeros(len(t))
    heading = 0.0
    for j in order:  # in time order, so a standstill holds the heading reached before it
        if np.hypot(*velocity[j]) >= STANDSTILL_MPS:
            heading = float(np.arctan2(velocity[j, 1], velocity[j, 0]))
        yaw[j] = heading
    return np.concatenate([position, yaw[:, None]], axis=1)


def chunk_motion(values: torch.Tensor, valid: torch.Tensor, from_frame: int, to_frames: Sequence[int], fps: float,
                 action_times: Sequence[float] = DEFAULT_ACTION_TIMES) -> np.ndarray:
    """Per batch item, the ego pose at each frame of `to_frames` seen from the pose at `from_frame`: (B, n, 3).

    values (B, 19) / valid (B, 5): the chunk's packed actions, whose origin is the chunk's frame 0; frame j lies
    j / fps seconds after it. Raises when an item's trajectory is invalid: there is no commanded path to follow.
    """
    if not bool(valid[:, TRAJECTORY_GROUP].all()):
        missing = (~valid[:, TRAJECTORY_GROUP]).nonzero().flatten().tolist()
        raise ValueError(f"batch items {missing} have no valid trajectory in their actions, so there is no ego path "
                         "to warp along; roll them out without warp_start (warp_start=null)")
    times = [from_frame / fps] + [j / fps for j in to_frames]
    out = []
    for trajectory in values[:, TRAJECTORY].double().cpu().numpy():
        poses = path_poses(trajectory.reshape(-1, 2), times, action_times)
        out.append(relative_pose(poses[0], poses[1:]))
    return np.stack(out)
