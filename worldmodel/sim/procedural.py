"""The procedural simulator as the same Gymnasium env: the ground truth that closed-loop fidelity compares against.

`ProceduralEnv` drives the ego exactly as `WorldModelEnv` does (same ego model, same actions, same route and
rewards) but renders every frame with the procedural world's renderer at the ego's pose, so a policy can
drive the real simulator, and a world-model episode can be replayed in it action for action.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from worldmodel.data.synthetic import render_views
from worldmodel.rollout.jobs import ModelRig
from worldmodel.sim.ego import EgoState
from worldmodel.sim.env import DrivingEnv
from worldmodel.sim.scenarios import SimStart


class ProceduralEnv(DrivingEnv):
    """Closed-loop driving in the procedural world itself, for a clip format `rig` (usually a checkpoint's)."""

    def __init__(self, rig: ModelRig, **kwargs: Any) -> None:
        super().__init__(rig, **kwargs)

    def _begin(self, start: SimStart, noise_seed: int) -> None:
        if start.world is None:
            raise ValueError(f"scenario {start.name} is not procedural (its source is "
                             f"{next(iter(start.info.get('source', {'?': 0})))}); the procedural simulator "
                             f"needs a procedural world (a procedural scenario or an int seed)")
        self.world = start.world

    def _frames(self, states: list[EgoState], values: torch.Tensor, valid: torch.Tensor) -> np.ndarray:
        return np.stack([render_views(self.world, s.pose, s.time_s, self.cameras, self.rig.size) for s in states])
