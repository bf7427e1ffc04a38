"""Ego actions of the env -> controllers of the ego model, and ego states -> the Vista action interface per chunk.

A chunk's Vista actions are measured like a recorded clip's (`actions_from_ego_states`): from the ego pose
at the chunk's first frame (its first reference frame), at DEFAULT_ACTION_TIMES after it. Those times reach
past the step, so the states there come from a preview that holds the step's action: the model is told
"keep doing this" for the 2 s window, and only the step's own frames are kept.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from worldmodel.data.actions import DEFAULT_ACTION_TIMES, Command, actions_from_ego_states, pack_actions
from worldmodel.sim.ego import Controller, EgoState, HoldControl, TrackTrajectory
from worldmodel.sim.spaces import MAX_STEERING_WHEEL_RAD


def controller_for(action: np.ndarray, mode: str, state: EgoState) -> Controller:
    """A validated action (see spaces.py) -> the controller the ego follows during the step."""
    if mode == "control":
        return HoldControl(float(action[0]), float(action[1]) * MAX_STEERING_WHEEL_RAD)
    return TrackTrajectory(action, state.pose, state.time_s)


def lookahead_frames(fps: float, action_times: Sequence[float] = DEFAULT_ACTION_TIMES) -> int:
    """Frames of states needed past a chunk's first frame to measure its actions."""
    return math.ceil(max(action_times) * fps - 1e-9) + 1


def chunk_actions(states: Sequence[EgoState], origin_time: float, front_camera: Mapping[str, Any],
                  action_times: Sequence[float] = DEFAULT_ACTION_TIMES) -> tuple[torch.Tensor, torch.Tensor]:
    """Ego states at frame times (history, step and preview) -> Vista values (1, 19) and valid (1, 5)."""
    times = np.array([s.time_s for s in states])
    poses = np.stack([s.pose for s in states])
    actions = actions_from_ego_states(
        timestamps=times, positions=poses[:, :2], yaws=poses[:, 2], speeds=np.array([s.speed for s in states]),
        steering=np.array([s.steering for s in states]), origin_time=origin_time, action_times=tuple(action_times),
        **front_camera)
    return pack_actions(actions)


def describe(values: torch.Tensor, valid: torch.Tensor) -> dict[str, Any]:
    """JSON-friendly summary of one chunk's Vista actions (for info and episode logs)."""
    v, ok = values[0].double().numpy(), valid[0].numpy()
    return {"command": Command(int(round(v[0]))).name.lower() if ok[0] else None,
            "trajectory": np.round(v[1:9].reshape(4, 2), 3).tolist() if ok[1] else None,
            "speed": np.round(v[9:13], 3).tolist() if ok[2] else None,
            "angle": np.round(v[13:17], 4).tolist() if ok[3] else None,
            "goal": np.round(v[17:19], 4).tolist() if ok[4] else None}
