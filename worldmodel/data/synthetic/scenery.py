"""Static roadside objects: street-light poles, trees (trunk + crown), building blocks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodel.data.synthetic.lighting import Lighting
from worldmodel.data.synthetic.road import Road
from worldmodel.data.synthetic.shapes import Parts, PartsBuilder

BUILDING_COLORS = np.array([[185, 175, 155], [150, 150, 155], [165, 105, 85], [205, 195, 175], [120, 125, 135],
                            [175, 160, 130], [95, 100, 110]], dtype=np.float64)
POLE_COLOR = np.array([115, 115, 120], dtype=np.float64)
TRUNK_COLOR = np.array([85, 65, 45], dtype=np.float64)
CROWN_COLORS = np.array([[55, 95, 40], [70, 110, 45], [45, 80, 40], [90, 115, 50]], dtype=np.float64)


@dataclass(frozen=True)
class SceneryDensity:
    """How much scenery a world gets (per 100 m of road, each side)."""

    pole_spacing_m: float | None = 32.0  # None: no poles
    trees_per_100m: float = 6.0
    building_fraction: float = 0.6  # share of each side's length lined with buildings


def _jitter(rng: np.random.Generator, color: np.ndarray, amount: float = 0.12) -> np.ndarray:
    return np.clip(color * rng.uniform(1 - amount, 1 + amount, size=3), 0, 255)


def build_scenery(rng: np.random.Generator, road: Road, density: SceneryDensity, lighting: Lighting) -> Parts:
    """Random static objects beside `road`, none of them reaching onto the carriageway or kerb."""
    layout = road.layout
    kerb_out = layout.shoulder + layout.kerb
    edges = {-1: layout.right_edge - kerb_out, 1: layout.left_edge + kerb_out}  # side -> outer kerb line
    candidates: list[tuple[str, float, int, float, dict]] = []  # kind, s, side, d, params

    if density.pole_spacing_m is not None:
        s = rng.uniform(0, density.pole_spacing_m)
        while s < road.length:
            for side in (-1, 1):
                if rng.random() < 0.8:
                    candidates.append(("pole", s, side, edges[side] + side * 0.4, {"height": rng.uniform(6.5, 8.5)}))
            s += density.pole_spacing_m * rng.uniform(0.85, 1.15)

    num_trees = rng.poisson(density.trees_per_100m * road.length / 100.0 * 2)
    for _ in range(num_trees):
        side = int(rng.choice([-1, 1]))
        d = edges[side] + side * (layout.sidewalk + rng.uniform(1.0, 9.0))
        candidates.append(("tree", rng.uniform(0, road.length), side, d, {
            "trunk": rng.uniform(1.6, 3.0), "radius": rng.uniform(1.2, 2.8), "stretch": rng.uniform(1.0, 1.6),
            "color": _jitter(rng, CROWN_COLORS[rng.integers(len(CROWN_COLORS))])}))

    for side in (-1, 1):
        s = rng.uniform(0, 20)
        while s < road.length:
            width = rng.uniform(8, 26)
            if rng.random() < density.building_fraction:
                depth = rng.uniform(8, 16)
                d = edges[side] + side * (layout.sidewalk + rng.uniform(2.0, 10.0) + depth / 2)
                height = rng.uniform(5, 14) if rng.random() < 0.7 else rng.uniform(14, 30)
                candidates.append(("building", s + width / 2, side, d, {
                    "width": width, "depth": depth, "height": height,
                    "color": _jitter(rng, BUILDING_COLORS[rng.integers(len(BUILDING_COLORS))])}))
            s += width + rng.uniform(2, 25)

    if not candidates:
        return Parts.empty()
    s_all = np.array([c[1] for c in candidates])
    d_all = np.array([c[3] for c in candidates])
    xy = road.point(s_all, d_all)
    _, _, heading = road.frame(s_all)
    # Objects placed beside one stretch of road can land on another one inside a tight bend.
    radius = np.array([np.hypot(c[4]["width"], c[4]["depth"]) / 2 if c[0] == "building"
                       else c[4]["radius"] * 0.5 if c[0] == "tree" else 0.2 for c in candidates])
    offsets = road.signed_offsets(xy)
    clear = (offsets - radius > edges[1] + 0.1) | (offsets + radius < edges[-1] - 0.1)
    clear &= (s_all > 1.0) & (s_all < road.length - 1.0)

    builder = PartsBuilder(lighting)
    for (kind, _, side, _, p), (x, y), h, ok in zip(candidates, xy, heading, clear):
        if not ok:
            continue
        owner = builder.new_object(x, y)
        if kind == "pole":
            builder.add_box(owner, x, y, h, 0.22, 0.22, 0.0, p["height"], POLE_COLOR)
            # The lamp arm reaches over the road: towards -side in road coordinates.
            ax, ay = x + side * 0.8 * np.sin(h), y - side * 0.8 * np.cos(h)
            builder.add_box(owner, ax, ay, h, 0.18, 1.6, p["height"] - 0.2, p["height"], POLE_COLOR)
        elif kind == "tree":
            builder.add_box(owner, x, y, h, 0.35, 0.35, 0.0, p["trunk"] + 0.3, TRUNK_COLOR)
            r = p["radius"]
            builder.add_blob(owner, (x, y, p["trunk"] + r * p["stretch"]), (r, r, r * p["stretch"]), p["color"])
        else:
            builder.add_box(owner, x, y, h, p["width"], p["depth"], 0.0, p["height"], p["color"])
    return builder.build()
