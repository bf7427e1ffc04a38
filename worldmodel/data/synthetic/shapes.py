"""Drawable 3-D primitives: oriented boxes (drawn face by face) and convex blobs (drawn as silhouettes)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodel.data.synthetic.lighting import Lighting

# Corner order: bottom ring (front-left, back-left, back-right, front-right), then the top ring.
_LOCAL_CORNERS = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
BOX_FACES = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]])
# Outward normals of BOX_FACES in the box frame (bottom, top, left, back, right, front).
_LOCAL_NORMALS = np.array([[0, 0, -1], [0, 0, 1], [0, 1, 0], [-1, 0, 0], [0, -1, 0], [1, 0, 0]], dtype=np.float64)


def _unit_blob() -> np.ndarray:
    """Points (22, 3) on a unit sphere: equator ring of 8, two rings of 6, the poles."""
    a8 = np.arange(8) * np.pi / 4
    a6 = np.arange(6) * np.pi / 3 + np.pi / 6
    ring = np.stack([np.cos(a8), np.sin(a8), np.zeros(8)], axis=1)
    r = np.sqrt(1 - 0.7 ** 2)
    upper = np.stack([r * np.cos(a6), r * np.sin(a6), np.full(6, 0.7)], axis=1)
    lower = upper * np.array([1, 1, -1])
    return np.concatenate([ring, upper, lower, [[0, 0, 1.0], [0, 0, -1.0]]])


UNIT_BLOB = _unit_blob()


def box_corners(x: np.ndarray, y: np.ndarray, yaw: np.ndarray, length: np.ndarray, width: np.ndarray,
                z0: np.ndarray, z1: np.ndarray) -> np.ndarray:
    """World corners (n, 8, 3) of boxes centred at (x, y), heading `yaw`, spanning heights z0..z1."""
    x, y, yaw, length, width, z0, z1 = (np.atleast_1d(np.asarray(a, dtype=np.float64))
                                        for a in (x, y, yaw, length, width, z0, z1))
    lx = _LOCAL_CORNERS[None, :, 0] * length[:, None]  # (n, 4)
    ly = _LOCAL_CORNERS[None, :, 1] * width[:, None]
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    wx, wy = x[:, None] + c * lx - s * ly, y[:, None] + s * lx + c * ly
    ring = np.stack([wx, wy], axis=-1)  # (n, 4, 2)
    bottom = np.concatenate([ring, np.broadcast_to(z0[:, None, None], (len(x), 4, 1))], axis=-1)
    top = np.concatenate([ring, np.broadcast_to(z1[:, None, None], (len(x), 4, 1))], axis=-1)
    return np.concatenate([bottom, top], axis=1)


def face_colors(colors: np.ndarray, yaw: np.ndarray, lighting: Lighting) -> np.ndarray:
    """Lit colour (n, 6, 3) of each face of boxes with surface `colors` (n, 3) and headings `yaw` (n,)."""
    yaw = np.atleast_1d(np.asarray(yaw, dtype=np.float64))
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    nx = c * _LOCAL_NORMALS[None, :, 0] - s * _LOCAL_NORMALS[None, :, 1]
    ny = s * _LOCAL_NORMALS[None, :, 0] + c * _LOCAL_NORMALS[None, :, 1]
    normals = np.stack([nx, ny, np.broadcast_to(_LOCAL_NORMALS[None, :, 2], nx.shape)], axis=-1)
    return lighting.apply(np.asarray(colors, dtype=np.float64)[:, None, :] * lighting.shade(normals)[..., None])


@dataclass
class Parts:
    """Geometry of a set of objects: boxes and blobs, each owned by one object (drawn boxes first, then blobs)."""

    boxes: np.ndarray  # (n, 8, 3) world corners
    box_colors: np.ndarray  # (n, 6, 3) lit face colours
    box_owner: np.ndarray  # (n,) int
    blobs: np.ndarray  # (m, P, 3) world points of convex blobs
    blob_colors: np.ndarray  # (m, 3) lit colours
    blob_owner: np.ndarray  # (m,) int
    owner_xy: np.ndarray  # (k, 2) object positions, for range culling and depth sorting

    @staticmethod
    def empty() -> Parts:
        return Parts(np.zeros((0, 8, 3)), np.zeros((0, 6, 3)), np.zeros(0, np.int64),
                     np.zeros((0, len(UNIT_BLOB), 3)), np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros((0, 2)))

    def select(self, owners: np.ndarray) -> Parts:
        """The parts of the objects whose indices are `owners`, renumbered 0..len(owners)-1."""
        remap = np.full(len(self.owner_xy), -1, np.int64)
        remap[owners] = np.arange(len(owners))
        kb, kh = remap[self.box_owner] >= 0, remap[self.blob_owner] >= 0
        return Parts(self.boxes[kb], self.box_colors[kb], remap[self.box_owner[kb]],
                     self.blobs[kh], self.blob_colors[kh], remap[self.blob_owner[kh]], self.owner_xy[owners])

    @staticmethod
    def concat(a: Parts, b: Parts) -> Parts:
        k = len(a.owner_xy)
        return Parts(np.concatenate([a.boxes, b.boxes]), np.concatenate([a.box_colors, b.box_colors]),
                     np.concatenate([a.box_owner, b.box_owner + k]), np.concatenate([a.blobs, b.blobs]),
                     np.concatenate([a.blob_colors, b.blob_colors]), np.concatenate([a.blob_owner, b.blob_owner + k]),
                     np.concatenate([a.owner_xy, b.owner_xy]))


class PartsBuilder:
    """Accumulates boxes and blobs object by object, then freezes them into `Parts`."""

    def __init__(self, lighting: Lighting) -> None:
        self.lighting = lighting
        self._boxes: list[tuple] = []
        self._blobs: list[tuple] = []
        self._owners: list[tuple[float, float]] = []

    def new_object(self, x: float, y: float) -> int:
        self._owners.append((x, y))
        return len(self._owners) - 1

    def add_box(self, owner: int, x: float, y: float, yaw: float, length: float, width: float,
                z0: float, z1: float, color: np.ndarray) -> None:
        self._boxes.append((owner, x, y, yaw, length, width, z0, z1, *np.asarray(color, dtype=np.float64)))

    def add_blob(self, owner: int, center: tuple[float, float, float], radii: tuple[float, float, float],
                 color: np.ndarray) -> None:
        self._blobs.append((owner, *center, *radii, *np.asarray(color, dtype=np.float64)))

    def build(self) -> Parts:
        parts = Parts.empty()
        if self._boxes:
            b = np.array(self._boxes)
            parts.boxes = box_corners(b[:, 1], b[:, 2], b[:, 3], b[:, 4], b[:, 5], b[:, 6], b[:, 7])
            parts.box_colors = face_colors(b[:, 8:11], b[:, 3], self.lighting)
            parts.box_owner = b[:, 0].astype(np.int64)
        if self._blobs:
            h = np.array(self._blobs)
            parts.blobs = h[:, None, 1:4] + UNIT_BLOB[None] * h[:, None, 4:7]
            # Foliage is lit mostly from above: shade as an upward-facing surface.
            up = self.lighting.shade(np.array([0.0, 0.0, 1.0]))
            parts.blob_colors = self.lighting.apply(h[:, 7:10] * (0.5 + 0.5 * up))
            parts.blob_owner = h[:, 0].astype(np.int64)
        if self._owners:
            parts.owner_xy = np.array(self._owners, dtype=np.float64)
        return parts
