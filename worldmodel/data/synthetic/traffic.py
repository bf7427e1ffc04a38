"""Other vehicles: coloured boxes driving along their lanes at constant speeds."""
from __future__ import annotations

import numpy as np

from worldmodel.data.synthetic.lighting import Lighting
from worldmodel.data.synthetic.road import Road
from worldmodel.data.synthetic.shapes import UNIT_BLOB, Parts, box_corners, face_colors

CAR_COLORS = np.array([[235, 235, 235], [30, 30, 35], [170, 172, 178], [160, 30, 30], [35, 60, 140],
                       [80, 85, 90], [200, 190, 160], [40, 100, 60]], dtype=np.float64)
GLASS = np.array([35, 45, 55], dtype=np.float64)
UNDERBODY = np.array([25, 25, 25], dtype=np.float64)


class Traffic:
    """Vehicles at lateral offsets `d`, arc length s0 + speed * t (negative speed: oncoming lanes)."""

    def __init__(self, road: Road, s0: np.ndarray, d: np.ndarray, speed: np.ndarray, size: np.ndarray,
                 color: np.ndarray, lighting: Lighting) -> None:
        self.road, self.lighting = road, lighting
        self.s0, self.d, self.speed = (np.asarray(a, dtype=np.float64) for a in (s0, d, speed))
        self.size = np.asarray(size, dtype=np.float64).reshape(-1, 3)  # length, width, height
        self.color = np.asarray(color, dtype=np.float64).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.s0)

    @staticmethod
    def random(rng: np.random.Generator, road: Road, per_100m_lane: float, lighting: Lighting) -> Traffic:
        """Vehicles spread over every lane; one speed per lane so that none drives through another."""
        layout = road.layout
        lanes = [(layout.lane_offset(i), 1.0) for i in range(layout.lanes_forward)]
        lanes += [(layout.left_edge - (j + 0.5) * layout.lane_width, -1.0) for j in range(layout.lanes_backward)]
        s0, d, speed, size, color = [], [], [], [], []
        mean_gap = 100.0 / per_100m_lane if per_100m_lane > 0 else np.inf
        for offset, direction in lanes:
            if not np.isfinite(mean_gap):
                break
            lane_speed = direction * rng.uniform(6.0, 15.0)
            s = rng.uniform(0.0, mean_gap)
            while s < road.length:
                van = rng.random() < 0.15
                length = rng.uniform(5.0, 6.2) if van else rng.uniform(4.1, 4.9)
                s0.append(s), d.append(offset), speed.append(lane_speed)
                size.append((length, rng.uniform(1.95, 2.1) if van else rng.uniform(1.72, 1.9),
                             rng.uniform(2.0, 2.5) if van else rng.uniform(1.4, 1.6)))
                color.append(np.clip(CAR_COLORS[rng.integers(len(CAR_COLORS))] * rng.uniform(0.9, 1.1), 0, 255))
                s += length + 6.0 + rng.exponential(mean_gap)
        return Traffic(road, np.array(s0), np.array(d), np.array(speed), np.array(size).reshape(-1, 3),
                       np.array(color).reshape(-1, 3), lighting)

    def positions(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World xy (n, ..., 2), heading (n, ...) and on-road flag (n, ...) of every vehicle at times t."""
        s = self.s0[:, None] + self.speed[:, None] * np.atleast_1d(np.asarray(t, dtype=np.float64))[None]
        on_road = (s > 3.0) & (s < self.road.length - 3.0)
        xy = self.road.point(s, self.d[:, None])
        _, _, heading = self.road.frame(s)
        heading = heading + np.where(self.speed < 0, np.pi, 0.0)[:, None]
        return xy, heading, on_road

    def remove_conflicts(self, times: np.ndarray, ego_xy: np.ndarray, clearance_m: float = 10.0) -> int:
        """Drop vehicles that come within `clearance_m` of the ego (times (n,), ego_xy (n, 2)); returns how many."""
        if len(self) == 0:
            return 0
        xy, _, on_road = self.positions(times)
        dist = np.linalg.norm(xy - np.asarray(ego_xy)[None], axis=-1)  # (vehicles, n)
        keep = ~np.any((dist < clearance_m) & on_road, axis=1)
        self.s0, self.d, self.speed = self.s0[keep], self.d[keep], self.speed[keep]
        self.size, self.color = self.size[keep], self.color[keep]
        return int((~keep).sum())

    def parts(self, t: float) -> Parts:
        """Drawable boxes (underbody, body, cabin) of the vehicles on the road at time t."""
        parts = Parts.empty()
        if len(self) == 0:
            return parts
        xy, heading, on_road = self.positions(t)
        idx = np.flatnonzero(on_road[:, 0])
        if len(idx) == 0:
            return parts
        x, y, yaw = xy[idx, 0, 0], xy[idx, 0, 1], heading[idx, 0]
        length, width, height = self.size[idx].T
        body_top = np.where(height > 1.8, height * 0.85, height * 0.62)
        back = -0.12 * length  # the cabin sits a little behind the middle of a car
        cabin_len = np.where(height > 1.8, length * 0.3, length * 0.5)
        cabin_shift = np.where(height > 1.8, 0.32 * length, back)  # a van's cab is at the front
        cx, cy = x + np.cos(yaw) * cabin_shift, y + np.sin(yaw) * cabin_shift
        n = len(idx)
        boxes = np.concatenate([
            box_corners(x, y, yaw, length * 0.86, width * 0.9, np.full(n, 0.12), np.full(n, 0.35)),
            box_corners(x, y, yaw, length, width, np.full(n, 0.3), body_top),
            box_corners(cx, cy, yaw, cabin_len, width * 0.86, body_top, height)])
        body = self.color[idx]
        cabin = np.where((height > 1.8)[:, None], body, 0.35 * body + 0.65 * GLASS)
        colors = np.concatenate([np.broadcast_to(UNDERBODY, (n, 3)), body, cabin])
        yaws = np.concatenate([yaw, yaw, yaw])
        owner = np.concatenate([np.arange(n)] * 3)
        order = np.argsort(owner, kind="stable")  # per vehicle: underbody, body, cabin
        return Parts(boxes[order], face_colors(colors, yaws, self.lighting)[order], owner[order],
                     np.zeros((0, len(UNIT_BLOB), 3)), np.zeros((0, 3)), np.zeros(0, np.int64),
                     np.stack([x, y], axis=-1))
