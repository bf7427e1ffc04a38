"""The route an episode is commanded to drive, and pluggable reward and termination callables.

A reward is any callable `StepContext -> float`, a termination any callable `StepContext -> bool`
(True ends the episode as `terminated`). The horizon always ends it as `truncated` (Gymnasium's
convention for time limits). Defaults: `RouteProgress` (metres gained along the route this step) and
no termination before the horizon.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SEARCH_WINDOW_M = 60.0  # projections look this far either side of the last one (routes may cross themselves)


@dataclass(frozen=True, eq=False)
class Route:
    """A polyline the ego is meant to follow: points (n, 2) metres, scripted speeds (n,) m/s, arc length s (n,)."""

    points: np.ndarray
    speeds: np.ndarray
    s: np.ndarray

    @classmethod
    def from_path(cls, points: np.ndarray, speeds: np.ndarray) -> Route:
        """Route through `points`, dropping repeats (a stopped ego logs the same point many times)."""
        points, speeds = np.asarray(points, np.float64), np.asarray(speeds, np.float64)
        keep = np.concatenate([[True], np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-3])
        points, speeds = points[keep], speeds[keep]
        if len(points) < 2:  # a route of a standing ego: a 1 m stub straight ahead keeps projections defined
            points = np.stack([points[0], points[0] + np.array([1.0, 0.0])])
            speeds = np.repeat(speeds[:1], 2)
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
        return cls(points, speeds, s)

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def in_frame(self, origin: np.ndarray) -> Route:
        """This route in the frame of pose `origin` (x, y, yaw): what the env's observation poses are relative to."""
        c, s = np.cos(origin[2]), np.sin(origin[2])
        d = self.points - origin[:2]
        return Route(np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=-1), self.speeds, self.s)

    def project(self, xy: np.ndarray, s_hint: float | None = None) -> tuple[float, float]:
        """(s, lateral offset, + left) of the nearest route point to `xy`; past either end, s extrapolates."""
        a, b = self.points[:-1], self.points[1:]
        seg = b - a
        seg_len = np.maximum(np.linalg.norm(seg, axis=1), 1e-9)
        u = np.einsum("ij,ij->i", np.asarray(xy) - a, seg) / seg_len  # metres along each segment
        clamped = np.clip(u, 0.0, seg_len)
        nearest = a + seg * (clamped / seg_len)[:, None]
        dist = np.linalg.norm(nearest - xy, axis=1)
        if s_hint is not None:
            far = np.abs(self.s[:-1] + clamped - s_hint) > SEARCH_WINDOW_M
            dist = np.where(far, np.inf, dist) if not far.all() else dist
        i = int(np.argmin(dist))
        along = u[i] if i in (0, len(seg) - 1) else clamped[i]  # extrapolate only off the two ends
        if i == 0:
            along = min(along, seg_len[0])
        if i == len(seg) - 1:
            along = max(along, 0.0)
        rel = np.asarray(xy) - a[i]
        lateral = (seg[i, 0] * rel[1] - seg[i, 1] * rel[0]) / seg_len[i]
        return float(self.s[i] + along), float(lateral)

    def point_at(self, s: float) -> np.ndarray:
        """(2,) point at arc length s, extended straight past the end."""
        if s > self.length:
            direction = (self.points[-1] - self.points[-2]) / max(self.s[-1] - self.s[-2], 1e-9)
            return self.points[-1] + direction * (s - self.length)
        return np.array([np.interp(s, self.s, self.points[:, k]) for k in range(2)])

    def speed_at(self, s: float) -> float:
        return float(np.interp(s, self.s, self.speeds))


@dataclass(frozen=True)
class StepContext:
    """What a reward or termination callable sees after a step; poses are (x, y, yaw) in the reset frame."""

    step: int
    time_s: float
    horizon_s: float
    action: np.ndarray
    previous_pose: np.ndarray
    pose: np.ndarray
    speed: float
    route: Route | None
    previous_progress_m: float
    progress_m: float
    lateral_offset_m: float


RewardFn = Callable[[StepContext], float]
TerminationFn = Callable[[StepContext], bool]


class RouteProgress:
    """Metres gained along the route during the step (negative when driving back); without a route, metres driven."""

    def __call__(self, ctx: StepContext) -> float:
        if ctx.route is None:
            return float(np.linalg.norm(ctx.pose[:2] - ctx.previous_pose[:2]))
        return float(ctx.progress_m - ctx.previous_progress_m)


class LeftRoute:
    """Terminates once the ego is more than `max_offset_m` beside the route (e.g. 2 m: out of its lane)."""

    def __init__(self, max_offset_m: float = 2.0) -> None:
        self.max_offset_m = float(max_offset_m)

    def __call__(self, ctx: StepContext) -> bool:
        return ctx.route is not None and abs(ctx.lateral_offset_m) > self.max_offset_m


def never(ctx: StepContext) -> bool:
    """The default termination: only the horizon ends an episode (as truncated)."""
    return False
