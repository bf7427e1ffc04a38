"""The procedural world: road, scenery, traffic, lighting and ground texture, all from one seed."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from worldmodel.data.synthetic.lighting import Lighting, sample_lighting
from worldmodel.data.synthetic.road import Bend, Road, RoadLayout
from worldmodel.data.synthetic.scenery import SceneryDensity, build_scenery
from worldmodel.data.synthetic.shapes import Parts
from worldmodel.data.synthetic.texture import GroundTexture
from worldmodel.data.synthetic.traffic import Traffic

# Unlit ground palette per texture label (grass, sidewalk, kerb, asphalt, white, yellow).
BASE_PALETTE = np.array([[78, 112, 52], [158, 156, 150], [182, 180, 174], [84, 84, 88], [232, 232, 228],
                         [226, 182, 48]], dtype=np.float64)


@dataclass(frozen=True)
class WorldConfig:
    """Knobs of a procedural world; None picks at random from the world's seed."""

    length_m: float = 600.0
    lanes_forward: int | None = None  # 1..3
    lanes_backward: int | None = None  # 0..2
    lane_width: float | None = None  # 3.0..3.75 m
    curves: bool = True  # random gentle curves and junction-like bends (when `bends` is None)
    bends: tuple[Bend, ...] | None = None  # explicit road geometry, overrides `curves`
    scenery: SceneryDensity | None = field(default_factory=SceneryDensity)  # None: bare road
    vehicles_per_100m_lane: float = 1.2
    time_of_day: str | None = None  # "day" | "overcast" | "dusk"
    ego_lane: int | None = None  # forward lane the ego starts in (0 = rightmost)
    ego_start_s: float = 40.0  # arc length where drives start


def random_bends(rng: np.random.Generator, layout: RoadLayout, start_s: float, end_s: float,
                 junction_probability: float = 0.3) -> list[Bend]:
    """Straights alternating with gentle curves and sharp junction-like bends between start_s and end_s."""
    bends, s = [], start_s + rng.uniform(20.0, 80.0)
    while True:
        if rng.random() < junction_probability:
            bend = junction_bend(rng, layout, s, 1 if rng.random() < 0.5 else -1)
        else:
            radius = rng.uniform(120.0, 500.0)
            angle = rng.uniform(0.15, 0.6) * rng.choice([-1.0, 1.0])
            bend = Bend(s, float(angle), float(radius), float(rng.uniform(20.0, 50.0)))
        if bend.start_s + bend.length > end_s:
            return bends
        bends.append(bend)
        s = bend.start_s + bend.length + rng.uniform(30.0, 150.0)


def junction_bend(rng: np.random.Generator, layout: RoadLayout, start_s: float, direction: int) -> Bend:
    """A sharp ~90 degree bend; the radius keeps the inner side's bands clear of the centre of the turn."""
    inner = (layout.left_edge if direction > 0 else -layout.right_edge) + layout.outer_margin
    radius = max(rng.uniform(12.0, 22.0), inner + 6.0)
    angle = direction * rng.uniform(1.2, 1.6)
    return Bend(float(start_s), float(angle), float(radius), 6.0)


def random_layout(rng: np.random.Generator, config: WorldConfig, min_forward: int = 1) -> RoadLayout:
    forward = config.lanes_forward if config.lanes_forward is not None else int(rng.integers(max(min_forward, 1), 4))
    forward = max(forward, min_forward)
    backward = config.lanes_backward if config.lanes_backward is not None else int(rng.choice([0, 1, 1, 2]))
    width = config.lane_width if config.lane_width is not None else float(rng.uniform(3.0, 3.75))
    return RoadLayout(
        lane_width=width, lanes_forward=forward, lanes_backward=backward,
        shoulder=float(rng.uniform(0.2, 0.8)), kerb=float(rng.uniform(0.2, 0.35)),
        sidewalk=float(rng.choice([0.0, rng.uniform(1.5, 3.5)])),
        divider=str(rng.choice(["double_yellow", "dashed_white", "solid_white"], p=[0.5, 0.3, 0.2])),
        dash_phase=float(rng.uniform(0, 9.0)))


class ProceduralWorld:
    """A static road scene with moving traffic; the ego is not part of it (see `ego.py`)."""

    def __init__(self, seed: int | tuple[int, ...], config: WorldConfig = WorldConfig(),
                 layout: RoadLayout | None = None) -> None:
        self.seed, self.config = seed, config
        rng = np.random.default_rng(seed)
        self.layout = layout if layout is not None else random_layout(rng, config)
        if config.bends is not None:
            bends = list(config.bends)
        elif config.curves:
            bends = random_bends(rng, self.layout, config.ego_start_s, config.length_m)
        else:
            bends = []
        self.road = Road(config.length_m, tuple(bends), self.layout)
        self.lighting: Lighting = sample_lighting(rng, config.time_of_day)
        self.static: Parts = (build_scenery(rng, self.road, config.scenery, self.lighting)
                              if config.scenery is not None else Parts.empty())
        self.traffic = Traffic.random(rng, self.road, config.vehicles_per_100m_lane, self.lighting)
        palette = BASE_PALETTE * rng.uniform(0.85, 1.15, size=(len(BASE_PALETTE), 1))
        palette[0] = palette[0] * rng.uniform(0.85, 1.15, size=3)  # green to dry grass
        texture_seed = int(rng.integers(1 << 30))
        self.ground = GroundTexture(self.road, self.lighting, palette, texture_seed)
        self.ego_lane = (config.ego_lane if config.ego_lane is not None
                         else int(rng.integers(self.layout.lanes_forward)))
        self._hills = (rng.uniform(0, 2 * np.pi, size=16), rng.uniform(0.4, 1.0) / np.arange(1, 17) ** 0.9,
                       rng.uniform(0.006, 0.03))
        self._renderers: dict = {}

    def start_pose(self) -> np.ndarray:
        """(x, y, yaw) at `ego_start_s` in the centre of the ego's lane."""
        s = self.config.ego_start_s
        xy = self.road.point(s, self.layout.lane_offset(self.ego_lane))
        _, _, heading = self.road.frame(s)
        return np.array([xy[0], xy[1], float(heading)])

    def horizon_elevation(self, azimuth: np.ndarray) -> np.ndarray:
        """tan(elevation) of the distant hills' skyline at world azimuths (periodic, fixed per world)."""
        phases, amplitudes, height = self._hills
        k = np.arange(1, len(phases) + 1)
        wave = (amplitudes[None] * np.sin(k[None] * np.asarray(azimuth)[..., None] + phases[None])).sum(-1)
        return height * (1.2 + wave / amplitudes.sum())

    def parts_at(self, time_s: float, center_xy: np.ndarray, radius_m: float) -> Parts:
        """Static objects and vehicles within `radius_m` of `center_xy` at `time_s`."""
        parts = Parts.concat(self.static, self.traffic.parts(time_s))
        if len(parts.owner_xy) == 0:
            return parts
        near = np.flatnonzero(np.hypot(*(parts.owner_xy - center_xy).T) < radius_m)
        return parts.select(near)
