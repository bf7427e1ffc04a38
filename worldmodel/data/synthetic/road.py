"""Procedural road: a centreline of straights, clothoid transitions and arcs, with lanes and markings.

Road coordinates: arc length `s` along the reference line and lateral offset `d` (positive to the
left of the driving direction). The reference line is the divider between the two directions:
forward lanes lie at d < 0 (lane 0 is the rightmost), oncoming lanes at d > 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_M = 0.5  # centreline sampling step


@dataclass(frozen=True)
class Bend:
    """A curve starting at arc length `start_s`: heading change `angle` (rad, + left) at `radius`, clothoid ends."""

    start_s: float
    angle: float
    radius: float
    transition_m: float

    @property
    def length(self) -> float:
        """Arc length of the whole bend (both transitions and the arc)."""
        transition = min(self.transition_m, abs(self.angle) * self.radius)
        return transition + abs(self.angle) * self.radius

    def curvature(self, s: np.ndarray) -> np.ndarray:
        """Signed curvature (1/m) of this bend at arc lengths `s` (zero outside it)."""
        transition = min(self.transition_m, abs(self.angle) * self.radius)
        k = np.sign(self.angle) / self.radius
        u = s - self.start_s
        total = self.length
        # Trapezoid: ramp up over the transition, hold, ramp down; the heading change is k * (total - transition).
        ramp = np.clip(np.minimum(u, total - u) / max(transition, 1e-9), 0.0, 1.0)
        return np.where((u >= 0) & (u <= total), k * ramp, 0.0)


@dataclass(frozen=True)
class RoadLayout:
    """Cross-section of the road: lanes, widths, markings and the bands beside it."""

    lane_width: float = 3.5
    lanes_forward: int = 2
    lanes_backward: int = 1
    shoulder: float = 0.4
    kerb: float = 0.3
    sidewalk: float = 2.0  # 0 for a rural road: grass right after the kerb
    divider: str = "double_yellow"  # "double_yellow" | "dashed_white" | "solid_white"
    marking_width: float = 0.15
    dash_length: float = 3.0
    dash_period: float = 9.0
    dash_phase: float = 0.0

    @property
    def right_edge(self) -> float:
        return -self.lanes_forward * self.lane_width

    @property
    def left_edge(self) -> float:
        return self.lanes_backward * self.lane_width

    @property
    def outer_margin(self) -> float:
        """Width beside each carriageway edge taken by shoulder, kerb and sidewalk."""
        return self.shoulder + self.kerb + self.sidewalk

    def lane_offset(self, lane: int) -> float:
        """Lateral offset of the centre of forward lane `lane` (0 = rightmost)."""
        if not 0 <= lane < self.lanes_forward:
            raise ValueError(f"lane {lane} outside 0..{self.lanes_forward - 1}")
        return self.right_edge + (lane + 0.5) * self.lane_width

    def markings(self) -> list[tuple[float, str, bool]]:
        """Painted lines as (offset d, colour 'white'|'yellow', dashed)."""
        w, inset = self.lane_width, 0.2
        lines = [(self.right_edge + inset, "white", False), (self.left_edge - inset, "white", False)]
        lines += [(-k * w, "white", True) for k in range(1, self.lanes_forward)]
        lines += [(k * w, "white", True) for k in range(1, self.lanes_backward)]
        if self.lanes_backward > 0:
            if self.divider == "double_yellow":
                lines += [(-0.12, "yellow", False), (0.12, "yellow", False)]
            else:
                lines.append((0.0, "white", self.divider == "dashed_white"))
        return lines


class Road:
    """A sampled centreline with its layout; lookups in (s, d) road coordinates."""

    def __init__(self, length_m: float, bends: tuple[Bend, ...], layout: RoadLayout) -> None:
        self.layout = layout
        self.bends = tuple(sorted(bends, key=lambda b: b.start_s))
        n = int(np.ceil(length_m / SAMPLE_M)) + 1
        self.s = np.arange(n) * SAMPLE_M
        k = np.zeros(n)
        for bend in self.bends:
            k += bend.curvature(self.s)
        self.curvature = k
        # Trapezoidal integration: heading from curvature, position from the mid-step heading.
        heading = np.concatenate([[0.0], np.cumsum(0.5 * (k[1:] + k[:-1]) * SAMPLE_M)])
        mid = 0.5 * (heading[1:] + heading[:-1])
        x = np.concatenate([[0.0], np.cumsum(np.cos(mid) * SAMPLE_M)])
        y = np.concatenate([[0.0], np.cumsum(np.sin(mid) * SAMPLE_M)])
        self.heading = heading
        self.xy = np.stack([x, y], axis=-1)

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def frame(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centreline x, y and heading at arc lengths `s` (linear interpolation)."""
        return (np.interp(s, self.s, self.xy[:, 0]), np.interp(s, self.s, self.xy[:, 1]),
                np.interp(s, self.s, self.heading))

    def point(self, s: np.ndarray | float, d: np.ndarray | float) -> np.ndarray:
        """World (..., 2) position of road coordinates (s, d)."""
        x, y, h = self.frame(s)
        return np.stack([x - d * np.sin(h), y + d * np.cos(h)], axis=-1)

    def offset_polyline(self, d: float, s0: float, s1: float, step: float = 1.0) -> np.ndarray:
        """Points (n, 2) of the curve at constant offset `d` between arc lengths s0 and s1."""
        s = np.append(np.arange(s0, s1, step), s1)
        return self.point(s, d)

    def project(self, xy: np.ndarray, s_hint: float | None = None, window_m: float = 15.0) -> tuple[float, float]:
        """Road coordinates (s, d) of one world point, searching near `s_hint` when given."""
        if s_hint is None:
            lo, hi = 0, len(self.s)
        else:
            i = int(round(s_hint / SAMPLE_M))
            half = int(window_m / SAMPLE_M)
            lo, hi = max(i - half, 0), min(i + half + 1, len(self.s))
        d2 = ((self.xy[lo:hi] - xy) ** 2).sum(axis=1)
        j = lo + int(np.argmin(d2))
        # Refine along the local tangent so s is continuous, not quantised to the sampling.
        h = self.heading[j]
        rel = xy - self.xy[j]
        along = rel[0] * np.cos(h) + rel[1] * np.sin(h)
        across = -rel[0] * np.sin(h) + rel[1] * np.cos(h)
        return float(np.clip(self.s[j] + along, 0.0, self.length)), float(across)

    def signed_offsets(self, xy: np.ndarray, step_m: float = 1.0) -> np.ndarray:
        """Lateral offset d (n,) of many world points from their nearest centreline sample."""
        stride = max(int(step_m / SAMPLE_M), 1)
        line, heading = self.xy[::stride], self.heading[::stride]
        d2 = ((xy[:, None, :] - line[None]) ** 2).sum(-1)  # (n, m)
        j = np.argmin(d2, axis=1)
        rel = xy - line[j]
        return -rel[:, 0] * np.sin(heading[j]) + rel[:, 1] * np.cos(heading[j])
