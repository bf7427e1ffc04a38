"""Per-episode illumination: a view-independent colour transform plus sky, fog and sun.

Everything here acts on world colours once per episode (palettes, object faces), so every
camera of a rig sees the same lighting and rendering pays nothing for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIMES_OF_DAY = ("day", "overcast", "dusk")


@dataclass(frozen=True)
class Lighting:
    """Colour gain, sky gradient, fog and sun direction of one episode."""

    gain: tuple[float, float, float]  # per-channel multiplier: brightness times tint
    sky_zenith: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]  # also the fog colour, so the ground fades into the sky
    fog_distance_m: float
    sun_direction: tuple[float, float, float]  # unit vector towards the sun, world frame (z up)
    ambient: float

    def apply(self, colors: np.ndarray) -> np.ndarray:
        """Lit RGB (float, 0-255) of surface colours (..., 3)."""
        return np.clip(np.asarray(colors, dtype=np.float64) * np.asarray(self.gain), 0.0, 255.0)

    def shade(self, normals: np.ndarray) -> np.ndarray:
        """Brightness factor (...,) of surfaces with world unit normals (..., 3): ambient plus diffuse sun."""
        diffuse = np.clip(normals @ np.asarray(self.sun_direction), 0.0, None)
        return self.ambient + (1.0 - self.ambient) * diffuse

    def fog_weight(self, distance: np.ndarray | float) -> np.ndarray:
        """Fraction (0-1) of the fog colour seen through `distance` metres of air."""
        return 1.0 - np.exp(-np.asarray(distance, dtype=np.float64) / self.fog_distance_m)


def sample_lighting(rng: np.random.Generator, time_of_day: str | None = None) -> Lighting:
    """Random lighting; `time_of_day` in TIMES_OF_DAY (None: day 60 %, overcast 25 %, dusk 15 %)."""
    if time_of_day is None:
        time_of_day = str(rng.choice(TIMES_OF_DAY, p=[0.6, 0.25, 0.15]))
    if time_of_day not in TIMES_OF_DAY:
        raise ValueError(f"time_of_day must be one of {TIMES_OF_DAY}, got {time_of_day!r}")
    azimuth = rng.uniform(-np.pi, np.pi)
    jitter = rng.uniform(0.92, 1.08, size=3)
    if time_of_day == "day":
        brightness, tint = rng.uniform(0.95, 1.15), np.array([1.0, 1.0, 0.98])
        zenith, horizon = np.array([70, 120, 200]), np.array([180, 205, 230])
        elevation, ambient, fog = rng.uniform(0.5, 1.2), 0.55, rng.uniform(250, 500)
    elif time_of_day == "overcast":
        brightness, tint = rng.uniform(0.8, 0.95), np.array([0.97, 1.0, 1.03])
        zenith, horizon = np.array([140, 145, 155]), np.array([195, 198, 202])
        elevation, ambient, fog = 1.3, 0.85, rng.uniform(120, 250)
    else:
        brightness, tint = rng.uniform(0.6, 0.8), np.array([1.12, 0.95, 0.8])
        zenith, horizon = np.array([60, 70, 120]), np.array([235, 160, 110])
        elevation, ambient, fog = rng.uniform(0.08, 0.25), 0.45, rng.uniform(180, 350)
    sun = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    return Lighting(
        gain=tuple(float(g) for g in brightness * tint * np.array([1.0, jitter[1] ** 0.3, jitter[2] ** 0.3])),
        sky_zenith=tuple(float(c) for c in np.clip(zenith * jitter, 0, 255)),
        sky_horizon=tuple(float(c) for c in np.clip(horizon * jitter ** 0.5, 0, 255)),
        fog_distance_m=float(fog),
        sun_direction=tuple(float(c) for c in sun),
        ambient=ambient,
    )
