"""Top-down ground texture (grass, sidewalk, kerb, asphalt, lane markings) in lazily generated tiles.

Road features are filled as world-space polygons into a label image per tile, then coloured
through the episode's lit palette with two octaves of value noise (continuous across tiles,
hashed from world lattice points) and per-texel grain. Tiles exist at several resolutions (mip
levels, each generated and cached on its own) so that distant ground is area-averaged instead
of aliased and costs less to make.
"""
from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

from worldmodel.data.synthetic.lighting import Lighting
from worldmodel.data.synthetic.road import Road

GRASS, SIDEWALK, KERB, ASPHALT, WHITE, YELLOW = range(6)
# Relative brightness modulation per label: (low-frequency patches, per-texel grain).
NOISE_AMPLITUDE = np.array([[0.22, 0.10], [0.06, 0.06], [0.04, 0.05], [0.10, 0.07], [0.05, 0.04], [0.05, 0.04]],
                           dtype=np.float32)
_SHIFT = 4  # fixed-point bits for sub-texel polygon edges in cv2.fillPoly
_CHUNK_M = 20.0


def _hash01(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic value in [0, 1) per integer lattice point (an integer hash, no RNG state)."""
    h = (ix.astype(np.int64) * 374761393 + iy.astype(np.int64) * 668265263 + salt * 982451653) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    h ^= h >> 16
    return (h & 0xFFFFFF).astype(np.float32) / float(1 << 24)


def value_noise(x0: float, y0: float, size_px: int, texel_m: float, cell_m: float, salt: int) -> np.ndarray:
    """Bilinear value noise in [-1, 1], (size_px, size_px) texels starting at world (x0, y0)."""
    coords = (np.arange(size_px, dtype=np.float64) + 0.5) * texel_m
    gx, gy = (x0 + coords) / cell_m, (y0 + coords) / cell_m
    ix0, iy0 = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    fx, fy = (gx - ix0).astype(np.float32), (gy - iy0).astype(np.float32)
    lx = np.arange(ix0.min(), ix0.max() + 2)
    ly = np.arange(iy0.min(), iy0.max() + 2)
    grid = _hash01(lx[None, :], ly[:, None], salt) * 2 - 1  # (rows=y, cols=x)
    cx, cy = ix0 - lx[0], iy0 - ly[0]
    top = grid[cy][:, cx] * (1 - fx) + grid[cy][:, cx + 1] * fx
    bottom = grid[cy + 1][:, cx] * (1 - fx) + grid[cy + 1][:, cx + 1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


class GroundTexture:
    """The world's ground as cached texture tiles; `sample` gathers colours at world points."""

    def __init__(self, road: Road, lighting: Lighting, palette: np.ndarray, seed: int, texel_m: float = 0.1,
                 tile_px: int = 256, levels: int = 3, capacities: tuple[int, ...] = (48, 96, 256)) -> None:
        self.texel_m, self.tile_px, self.levels = texel_m, tile_px, levels
        self.tile_m = texel_m * tile_px
        self.seed = seed
        self.palette = lighting.apply(palette).astype(np.float32)  # (labels, 3) lit colours
        self._material = np.concatenate([self.palette, NOISE_AMPLITUDE], axis=1)  # one lookup per texel
        self._polygons, self._labels, self._bboxes = self._road_polygons(road)
        self._atlas = [np.zeros((capacities[k], tile_px >> k, tile_px >> k, 3), np.uint8) for k in range(levels)]
        self._slots: list[OrderedDict[tuple[int, int], int]] = [OrderedDict() for _ in range(levels)]
        self.tiles_generated = 0

    # ------------------------------------------------------------------ geometry
    @staticmethod
    def _road_polygons(road: Road) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Strips between two offsets, chunked along the road, in paint order (bands first, markings last)."""
        lay = road.layout
        mid = 0.5 * (lay.left_edge + lay.right_edge)
        half = 0.5 * (lay.left_edge - lay.right_edge)
        strips: list[tuple[int, float, float, float, float]] = []  # label, d_a, d_b, s0, s1
        edges = np.append(np.arange(0.0, road.length, _CHUNK_M), road.length)
        bands = []
        if lay.sidewalk > 0:
            bands.append((SIDEWALK, half + lay.outer_margin))
        bands += [(KERB, half + lay.shoulder + lay.kerb), (ASPHALT, half + lay.shoulder)]
        for label, w in bands:
            strips += [(label, mid - w, mid + w, a, b) for a, b in zip(edges[:-1], edges[1:])]
        half_mark = lay.marking_width / 2
        for d, colour, dashed in lay.markings():
            label = YELLOW if colour == "yellow" else WHITE
            if dashed:
                starts = np.arange(lay.dash_phase % lay.dash_period, road.length, lay.dash_period)
                spans = [(a, min(a + lay.dash_length, road.length)) for a in starts]
            else:
                spans = list(zip(edges[:-1], edges[1:]))
            strips += [(label, d - half_mark, d + half_mark, a, b) for a, b in spans if b > a]
        polygons, labels, boxes = [], [], []
        for label, da, db, a, b in strips:
            left = road.offset_polyline(db, a, b, step=1.0)
            right = road.offset_polyline(da, a, b, step=1.0)
            poly = np.concatenate([left, right[::-1]])
            polygons.append(poly)
            labels.append(label)
            boxes.append([*poly.min(axis=0), *poly.max(axis=0)])
        return polygons, np.array(labels), np.array(boxes).reshape(-1, 4)

    # ------------------------------------------------------------------ tiles
    def _label_image(self, tx: int, ty: int) -> np.ndarray:
        """Material label per full-resolution texel of tile (tx, ty); rows follow world y, columns world x."""
        t, texel = self.tile_px, self.texel_m
        x0, y0 = tx * self.tile_m, ty * self.tile_m
        labels = np.zeros((t, t), np.uint8)
        b = self._bboxes
        x1, y1 = x0 + self.tile_m, y0 + self.tile_m
        hit = np.flatnonzero((b[:, 0] < x1) & (b[:, 2] > x0) & (b[:, 1] < y1) & (b[:, 3] > y0))
        scale = float(1 << _SHIFT)
        i = 0
        while i < len(hit):  # one fillPoly per run of equal labels keeps the paint order
            j = i
            while j < len(hit) and self._labels[hit[j]] == self._labels[hit[i]]:
                j += 1
            # Texel centres sit at integer cv2 coordinates, hence the half-texel shift.
            pts = [np.round(((self._polygons[k] - (x0, y0)) / texel - 0.5) * scale).astype(np.int32) for k in hit[i:j]]
            cv2.fillPoly(labels, pts, int(self._labels[hit[i]]), lineType=cv2.LINE_8, shift=_SHIFT)
            i = j
        return labels

    def _generate(self, tx: int, ty: int, level: int) -> np.ndarray:
        """Colour image of tile (tx, ty) at mip `level`.

        Materials are area-averaged from full resolution (thin markings fade instead of aliasing);
        noise is then added at the level's own resolution. Each (tile, level) depends on nothing
        else, so the result is independent of which camera or frame asked first.
        """
        material = self._material[self._label_image(tx, ty)]  # (t, t, 5): lit rgb, noise amplitudes
        tp = self.tile_px >> level
        if level:
            material = cv2.resize(material, (tp, tp), interpolation=cv2.INTER_AREA)
        base, amp = material[..., :3], material[..., 3:]
        texel = self.texel_m * (1 << level)
        x0, y0 = tx * self.tile_m, ty * self.tile_m
        low = 0.65 * value_noise(x0, y0, tp, texel, 2.56, self.seed) + 0.35 * value_noise(x0, y0, tp, texel, 12.8,
                                                                                         self.seed + 1)
        rng = np.random.default_rng((self.seed, tx + (1 << 30), ty + (1 << 30), level))
        # Averaging n texels shrinks grain by sqrt(n); keep that so distant ground looks smoother.
        grain = (rng.random((tp, tp), np.float32) * 2 - 1) / (1 << level)
        gain = 1.0 + low * amp[..., 0] + grain * amp[..., 1]
        self.tiles_generated += 1
        return np.clip(base * gain[..., None], 0, 255).astype(np.uint8)

    def _slot(self, level: int, key: tuple[int, int]) -> int:
        table, atlas = self._slots[level], self._atlas[level]
        if key in table:
            table.move_to_end(key)
            return table[key]
        if len(table) < len(atlas):
            slot = len(table)
        else:
            _, slot = table.popitem(last=False)  # least recently used
        atlas[slot] = self._generate(*key, level)
        table[key] = slot
        return slot

    def _reserve(self, level: int, count: int) -> None:
        """Grow a level's cache so that one gather's `count` tiles never evict each other."""
        atlas = self._atlas[level]
        if count > len(atlas):
            extra = np.zeros((count - len(atlas) + 16, *atlas.shape[1:]), np.uint8)
            self._atlas[level] = np.concatenate([atlas, extra])

    def sample(self, wx: np.ndarray, wy: np.ndarray, level: int) -> np.ndarray:
        """Nearest-texel colours (n, 3) uint8 at world points (wx, wy) from mip `level`."""
        tp = self.tile_px >> level
        fx, fy = wx / self.tile_m, wy / self.tile_m
        tx, ty = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
        lx = np.minimum(((fx - tx) * tp).astype(np.int64), tp - 1)
        ly = np.minimum(((fy - ty) * tp).astype(np.int64), tp - 1)
        tx0, ty0 = int(tx.min()), int(ty.min())
        ny = int(ty.max()) - ty0 + 1
        key = (tx - tx0) * ny + (ty - ty0)
        used = np.flatnonzero(np.bincount(key))
        self._reserve(level, len(used))
        lut = np.zeros(int(key.max()) + 1, np.int64)
        for k in used:
            lut[k] = self._slot(level, (tx0 + int(k) // ny, ty0 + int(k) % ny))
        flat = (lut[key] * tp + ly) * tp + lx
        return self._atlas[level].reshape(-1, 3)[flat]
