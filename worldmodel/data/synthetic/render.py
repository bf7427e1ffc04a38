"""The renderer: sky and distant hills, textured flat ground, and objects drawn far-to-near.

The ground is flat (z = 0) and cameras are level, so each ground pixel's intersection point in
the ego frame, its distance (fog) and its texture footprint (mip level) are fixed per camera and
precomputed; a frame only rotates those points by the ego pose and gathers texels. Objects are
boxes (visible faces filled) and convex blobs (silhouette filled), clipped at the near plane.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from worldmodel.data.synthetic.cameras import Camera, resolve_views
from worldmodel.data.synthetic.shapes import BOX_FACES
from worldmodel.data.synthetic.world import ProceduralWorld

MAX_GROUND_M = 160.0  # ground beyond this is drawn as haze
MAX_OBJECT_M = 140.0
NEAR_M = 0.1
_SHIFT = 3  # fixed-point bits for sub-pixel polygon vertices
_SCALE = float(1 << _SHIFT)
_HILL_COLOR = np.array([62.0, 84.0, 58.0])


def clip_polygon_near(poly: np.ndarray, near: float = NEAR_M) -> np.ndarray | None:
    """Part (k, 3) of a convex camera-space polygon in front of the plane z = near (Sutherland-Hodgman)."""
    out = []
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        a_in, b_in = a[2] >= near, b[2] >= near
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if len(out) >= 3 else None


def clip_points_near(points: np.ndarray, near: float = NEAR_M) -> np.ndarray:
    """Points spanning the part of a convex point set's hull in front of z = near (kept points + edge crossings)."""
    inside = points[:, 2] >= near
    a, b = points[inside], points[~inside]
    t = (near - a[:, None, 2]) / (b[None, :, 2] - a[:, None, 2])  # (k_in, k_out)
    crossings = a[:, None] + t[..., None] * (b[None] - a[:, None])
    return np.concatenate([a, crossings.reshape(-1, 3)])


class Renderer:
    """Renders one world for a fixed camera rig and image size."""

    def __init__(self, world: ProceduralWorld, cameras: Sequence[Camera], size: tuple[int, int]) -> None:
        self.world, self.cameras, self.size = world, tuple(cameras), (int(size[0]), int(size[1]))
        h, w = self.size
        lighting, ground = world.lighting, world.ground
        horizon, zenith = np.array(lighting.sky_horizon), np.array(lighting.sky_zenith)
        self.intrinsics = np.stack([c.intrinsics(self.size) for c in self.cameras])
        self.rotations = np.stack([c.rotation() for c in self.cameras])  # camera -> ego
        self.positions = np.array([c.position for c in self.cameras])
        self.background = np.empty((len(self.cameras), h, w, 3), np.uint8)
        levels: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(ground.levels)]
        self._hills = []
        fog_rgb = horizon.astype(np.uint16)
        self.hill_color = (lighting.apply(_HILL_COLOR) * 0.45 + horizon * 0.55).astype(np.uint8)
        for v, cam in enumerate(self.cameras):
            k = self.intrinsics[v]
            u, r = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
            rays = np.stack([(u - k[0, 2]) / k[0, 0], (r - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)
            rays = rays @ self.rotations[v].T  # (h, w, 3) in the ego frame
            horizontal = np.hypot(rays[..., 0], rays[..., 1])
            up = rays[..., 2] / horizontal  # tan(elevation)
            blend = np.clip(up * 3.0, 0.0, 1.0)[..., None] ** 0.6
            sky = horizon * (1 - blend) + zenith * blend
            self.background[v] = np.clip(sky, 0, 255).astype(np.uint8)
            # Distant hills only rise a few degrees: keep the band of rows that can show them.
            rows = np.flatnonzero(((up > 0) & (up < 0.08)).any(axis=1))
            azimuth = np.arctan2(rays[0, :, 1], rays[0, :, 0])  # level camera: depends on the column only
            if len(rows):
                self._hills.append((v, rows[0], rows[-1] + 1, azimuth, up[rows[0]:rows[-1] + 1]))
            down = rays[..., 2] < -1e-9
            depth = np.where(down, -cam.position[2] / np.where(down, rays[..., 2], -1.0), np.inf)
            gx, gy = cam.position[0] + depth * rays[..., 0], cam.position[1] + depth * rays[..., 1]
            dist = depth * np.linalg.norm(rays, axis=-1)
            mask = down & (dist < MAX_GROUND_M)
            # Footprint of a pixel on the ground (geometric mean of its two axes) picks the mip level.
            cos_incidence = np.abs(rays[..., 2]) / np.linalg.norm(rays, axis=-1)
            footprint = dist / np.sqrt(k[0, 0] * k[1, 1] * np.maximum(cos_incidence, 1e-6))
            level = np.clip(np.ceil(np.log2(np.maximum(footprint / ground.texel_m, 1e-6)) - 0.5), 0,
                            ground.levels - 1).astype(np.int64)
            fog = np.round(lighting.fog_weight(dist) * 256).astype(np.uint16)
            flat = v * h * w + np.arange(h * w).reshape(h, w)
            for lv in range(ground.levels):
                sel = mask & (level == lv)
                f = fog[sel][:, None]
                levels[lv].append((flat[sel], gx[sel], gy[sel], 256 - f, f * fog_rgb[None]))
        self._ground = [tuple(np.concatenate([p[i] for p in parts]) for i in range(5)) if parts else None
                        for parts in levels]

    # ------------------------------------------------------------------ passes
    def _draw_hills(self, out: np.ndarray, yaw: float) -> None:
        for v, r0, r1, azimuth, up in self._hills:
            skyline = self.world.horizon_elevation(azimuth + yaw)  # (w,)
            band = out[v, r0:r1]
            band[up < skyline[None, :]] = self.hill_color

    def _draw_ground(self, out: np.ndarray, pose: np.ndarray) -> None:
        x, y, yaw = pose
        c, s = np.cos(yaw), np.sin(yaw)
        flat_out = out.reshape(-1, 3)
        for lv, data in enumerate(self._ground):
            if data is None or len(data[0]) == 0:
                continue
            flat, gx, gy, keep, fog = data
            texels = self.world.ground.sample(x + c * gx - s * gy, y + s * gx + c * gy, lv)
            flat_out[flat] = ((texels.astype(np.uint16) * keep + fog) >> 8).astype(np.uint8)

    def _draw_objects(self, out: np.ndarray, pose: np.ndarray, time_s: float) -> None:
        x, y, yaw = pose
        parts = self.world.parts_at(time_s, np.array([x, y]), MAX_OBJECT_M)
        if len(parts.owner_xy) == 0:
            return
        c, s = np.cos(yaw), np.sin(yaw)
        rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        horizon = np.array(self.world.lighting.sky_horizon)
        for v in range(len(self.cameras)):
            r_wc = rz @ self.rotations[v]  # camera -> world
            origin = np.array([x, y, 0.0]) + rz @ self.positions[v]
            boxes = (parts.boxes - origin) @ r_wc  # (n, 8, 3) camera coordinates
            blobs = (parts.blobs - origin) @ r_wc
            owner_dist = np.hypot(*(parts.owner_xy - origin[:2]).T)
            fog = self.world.lighting.fog_weight(owner_dist)[:, None]
            box_rgb = parts.box_colors * (1 - fog[parts.box_owner, None]) + horizon * fog[parts.box_owner, None]
            blob_rgb = parts.blob_colors * (1 - fog[parts.blob_owner]) + horizon * fog[parts.blob_owner]
            items = self._visible_items(boxes, parts.box_owner, blobs, parts.blob_owner, owner_dist, v)
            if not items:
                continue
            box_uv, box_cut = self._project(boxes, v)
            blob_uv, blob_cut = self._project(blobs, v)
            box_rgb, blob_rgb = box_rgb.tolist(), blob_rgb.tolist()
            img = out[v]
            for kind, i, face in items:
                if kind == 0:
                    if box_cut[i]:  # crosses the near plane: clip this face in camera space
                        poly = clip_polygon_near(boxes[i, BOX_FACES[face]])
                        if poly is None:
                            continue
                        pts = self._project(poly, v)[0]
                    else:
                        pts = box_uv[i, BOX_FACES[face]]
                    cv2.fillConvexPoly(img, pts, box_rgb[i][face], lineType=cv2.LINE_AA, shift=_SHIFT)
                else:
                    pts = self._project(clip_points_near(blobs[i]), v)[0] if blob_cut[i] else blob_uv[i]
                    cv2.fillConvexPoly(img, cv2.convexHull(pts), blob_rgb[i], lineType=cv2.LINE_AA, shift=_SHIFT)

    def _project(self, points: np.ndarray, v: int) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-point pixel coordinates (..., 2) int32 of camera-space points, and whether each group
        along the second-to-last axis has a point behind the near plane (those need clipping first)."""
        k = self.intrinsics[v]
        z = points[..., 2]
        zc = np.maximum(z, NEAR_M)
        # cv2 puts pixel centres at integer coordinates, hence the half-pixel shift.
        uv = np.stack([k[0, 0] * points[..., 0] / zc + (k[0, 2] - 0.5),
                       k[1, 1] * points[..., 1] / zc + (k[1, 2] - 0.5)], axis=-1)
        pts = np.round(np.clip(uv, -1e6, 1e6) * _SCALE).astype(np.int32)  # int32 fixed point stays in range
        return pts, (z < NEAR_M).any(axis=-1)

    def _visible_items(self, boxes: np.ndarray, box_owner: np.ndarray, blobs: np.ndarray, blob_owner: np.ndarray,
                       owner_dist: np.ndarray, v: int) -> list[tuple[int, int, int]]:
        """(kind, index, face) to fill, far objects first; per object its boxes, then its blobs."""
        h, w = self.size
        k = self.intrinsics[v]

        def on_screen(points: np.ndarray) -> np.ndarray:
            z = points[..., 2]
            front = z > NEAR_M
            zc = np.maximum(z, NEAR_M)
            u = k[0, 0] * points[..., 0] / zc + k[0, 2]
            r = k[1, 1] * points[..., 1] / zc + k[1, 2]
            # A straddling part may cover the view even when its front vertices project outside.
            partial = front.any(-1) & ~front.all(-1)
            inside = ((u.max(-1) > 0) & (u.min(-1) < w) & (r.max(-1) > 0) & (r.min(-1) < h))
            return front.any(-1) & (inside | partial)

        box_ok = np.flatnonzero(on_screen(boxes)) if len(boxes) else np.zeros(0, np.int64)
        blob_ok = np.flatnonzero(on_screen(blobs)) if len(blobs) else np.zeros(0, np.int64)
        sel = boxes[box_ok]
        centers = sel[:, BOX_FACES].mean(axis=2)  # (n, 6, 3) face centres
        facing = ((centers * (centers - sel.mean(axis=1)[:, None])).sum(-1) < 0)  # camera on the outer side
        keys = np.concatenate([box_owner[box_ok], blob_owner[blob_ok]])
        kinds = np.concatenate([np.zeros(len(box_ok), np.int64), np.ones(len(blob_ok), np.int64)])
        index = np.concatenate([box_ok, blob_ok])
        order = np.lexsort((index, kinds, keys, -owner_dist[keys]))
        items = []
        row_of = {int(b): j for j, b in enumerate(box_ok)}
        for o in order:
            i = int(index[o])
            if kinds[o] == 0:
                items.extend((0, i, int(f)) for f in np.flatnonzero(facing[row_of[i]]))
            else:
                items.append((1, i, 0))
        return items

    # ------------------------------------------------------------------ public
    def render(self, pose: np.ndarray, time_s: float) -> np.ndarray:
        """uint8 (v, h, w, 3) images of every camera with the ego at `pose` (x, y, yaw) at `time_s`."""
        pose = np.asarray(pose, dtype=np.float64)
        out = self.background.copy()
        self._draw_hills(out, float(pose[2]))
        self._draw_ground(out, pose)
        self._draw_objects(out, pose, float(time_s))
        return out


def render_views(world: ProceduralWorld, pose: np.ndarray, time_s: float,
                 rig: str | Sequence[str | Camera] = "front", size: tuple[int, int] = (144, 256)) -> np.ndarray:
    """uint8 (v, h, w, 3) views of `world` from ego `pose` (x, y, yaw) at `time_s` (renderer cached per rig, size)."""
    cameras = resolve_views(rig)
    key = (cameras, tuple(size))
    renderer = world._renderers.get(key)
    if renderer is None:
        renderer = world._renderers[key] = Renderer(world, cameras, size)
    return renderer.render(pose, time_s)
