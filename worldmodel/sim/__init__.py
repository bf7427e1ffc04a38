"""Closed-loop simulation: Gymnasium envs in which a driving policy acts and a world model renders.

    import gymnasium as gym
    import worldmodel.sim  # registers worldmodel/WorldModel-v0
    env = gym.make("worldmodel/WorldModel-v0", checkpoint="outputs/demo/<time>/export")
"""
import gymnasium

from worldmodel.sim.env import DrivingEnv, WorldModelEnv
from worldmodel.sim.policies import LaneKeeping, load_policy
from worldmodel.sim.procedural import ProceduralEnv
from worldmodel.sim.rewards import LeftRoute, Route, RouteProgress, StepContext

ENV_ID = "worldmodel/WorldModel-v0"


def register() -> None:
    """Register the env ids with Gymnasium (idempotent)."""
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(ENV_ID, entry_point="worldmodel.sim.env:WorldModelEnv")


register()

__all__ = ["ENV_ID", "DrivingEnv", "LaneKeeping", "LeftRoute", "ProceduralEnv", "Route", "RouteProgress",
           "StepContext", "WorldModelEnv", "load_policy", "register"]
