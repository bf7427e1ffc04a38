"""Closed-loop driving environments: a policy acts, a world model (or the procedural renderer) shows the result.

Every step takes one ego action, drives the ego model for `chunk_s` seconds (round(chunk_s * fps) frames),
and asks the frame source for those frames. `WorldModelEnv` generates them with a trained world model:
the step's action becomes the chunk's Vista actions (see sim/actions.py), the first chunk starts from the
scenario's `first_reference` real frames, and every later chunk from the last `carry_frames` generated
latents. A chunk has the model's training length (`chunk_frames`), so frames per step is at most
chunk_frames - max(carry_frames, first_reference): 5 for the quickstart model (8-frame chunks, 3 carried).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from worldmodel.checkpoint import LoadedWorldModel, load_world_model
from worldmodel.diffusion.prediction import takes_warp
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.rollout.jobs import ModelRig
from worldmodel.rollout.warp_start import check_warp_tau, checked_warp_start
from worldmodel.runtime import pick_device, sampling_precision, with_sampler_overrides
from worldmodel.sim.actions import chunk_actions, controller_for, describe, lookahead_frames
from worldmodel.sim.ego import EgoIntegrator, EgoState
from worldmodel.sim.rewards import RewardFn, RouteProgress, StepContext, TerminationFn, never
from worldmodel.sim.scenarios import ScenarioLike, SimStart, start_for
from worldmodel.sim.spaces import action_space, observation_space, validate_action, wrap_angle
from worldmodel.viz import camera_mosaic, from_uint8, to_uint8

DEFAULT_SCENARIO = "straight_cruise"
_CACHED_STARTS = 4


class DrivingEnv(gym.Env):
    """The Gymnasium env shared by the world model and the procedural renderer; subclasses make the frames."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, rig: ModelRig, scenario: ScenarioLike = DEFAULT_SCENARIO, horizon_s: float = 10.0,
                 chunk_s: float = 0.5, carry_frames: int = 3, first_reference: int = 1, action_mode: str = "control",
                 reward_fn: RewardFn | None = None, termination_fn: TerminationFn | None = None,
                 render_mode: str | None = "rgb_array") -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.rig, self.scenario = rig, scenario
        self.fps = float(rig.fps)
        self.frames_per_step = int(round(chunk_s * self.fps))
        limit = rig.chunk_frames - max(carry_frames, first_reference)
        if not 1 <= carry_frames < rig.chunk_frames or not 1 <= first_reference < rig.chunk_frames:
            raise ValueError(f"carry_frames ({carry_frames}) and first_reference ({first_reference}) must lie in "
                             f"[1, {rig.chunk_frames - 1}] for a model trained on {rig.chunk_frames}-frame chunks")
        if not 1 <= self.frames_per_step <= limit:
            raise ValueError(f"chunk_s={chunk_s} gives {self.frames_per_step} new frames per step at {self.fps:g} Hz; "
                             f"the model's {rig.chunk_frames}-frame chunks with {max(carry_frames, first_reference)} "
                             f"reference frames allow 1 to {limit} ({limit / self.fps:g} s)")
        if first_reference + self.frames_per_step < carry_frames:
            raise ValueError(f"the first step makes {first_reference + self.frames_per_step} frames, fewer than the "
                             f"{carry_frames} carry_frames the next one needs")
        if horizon_s <= 0:
            raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
        self.chunk_s = self.frames_per_step / self.fps
        self.horizon_s, self.carry_frames, self.first_reference = float(horizon_s), carry_frames, first_reference
        self.max_steps = math.ceil(self.horizon_s / self.chunk_s - 1e-9)
        self.action_mode = action_mode
        self.action_space = action_space(action_mode)
        self.cameras = self._camera_names()
        self.observation_space = observation_space(len(self.cameras), rig.size, self.horizon_s)
        self.reward_fn = reward_fn or RouteProgress()
        self.termination_fn = termination_fn or never
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.fps}
        self._starts: dict[Any, SimStart] = {}
        self._start: SimStart | None = None
        self._done = True

    def _camera_names(self) -> list[str]:
        from worldmodel.data.synthetic import resolve_views

        return [c.name for c in resolve_views(self.rig.views)]

    # ------------------------------------------------------------------ subclass hooks
    def _begin(self, start: SimStart, noise_seed: int) -> None:
        """A new episode starts from `start`'s reference frames."""
        raise NotImplementedError

    def _frames(self, states: list[EgoState], values: torch.Tensor, valid: torch.Tensor) -> np.ndarray:
        """uint8 (n, V, H, W, 3): the step's frames, the ego at `states`, Vista actions (1, 19) / (1, 5)."""
        raise NotImplementedError

    def _num_references(self) -> int:
        """Frames the coming chunk is conditioned on (its first frame is the Vista actions' origin)."""
        return self.first_reference if self.steps == 0 else self.carry_frames

    # ------------------------------------------------------------------ episode
    def _load_start(self, scenario: ScenarioLike) -> SimStart:
        key = (str(scenario) if not hasattr(scenario, "path") else (scenario.name, str(scenario.path)), type(scenario))
        if key not in self._starts:
            if len(self._starts) >= _CACHED_STARTS:
                self._starts.pop(next(iter(self._starts)))
            start = start_for(scenario, self.rig, self.first_reference, self.horizon_s)
            expected = (self.first_reference, len(self.cameras), *self.rig.size, 3)
            if start.reference.shape != expected:
                raise ValueError(f"scenario {start.name} gives reference frames {start.reference.shape}, the env "
                                 f"needs {expected} (first_reference, views, height, width, 3)")
            self._starts[key] = start
        return self._starts[key]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Start an episode; options: {"scenario": name | YAML path | procedural seed (int) | Scenario}."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"scenario"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; the env takes {{'scenario': ...}}")
        start = self._load_start(options.get("scenario", self.scenario))
        self._start = start
        self.ego = EgoIntegrator(start.history[-1], self.fps)
        self.states: list[EgoState] = list(start.history)
        self.origin = start.history[-1].pose
        self.route = start.route.in_frame(self.origin)
        self.progress_m, self.lateral_m = self.route.project(np.zeros(2))
        self.steps, self._done = 0, False
        self.frame_count = len(start.reference)
        self._latest = start.reference[-1].copy()
        self._begin(start, int(self.np_random.integers(2 ** 62)))
        info = {"frames": start.reference.copy(), "scenario": copy.deepcopy(dict(start.info, name=start.name)),
                "cameras": list(self.cameras), "fps": self.fps, "time_s": 0.0, "frame_count": self.frame_count,
                "route": self.route, "progress_m": self.progress_m, "lateral_offset_m": self.lateral_m}
        return self._observation(), info

    def _relative(self, state: EgoState) -> np.ndarray:
        c, s = math.cos(self.origin[2]), math.sin(self.origin[2])
        dx, dy = state.x - self.origin[0], state.y - self.origin[1]
        return np.array([c * dx + s * dy, -s * dx + c * dy, wrap_angle(state.yaw - self.origin[2])])

    def _observation(self) -> dict[str, np.ndarray]:
        state = self.ego.state
        space = self.observation_space
        return {"frames": self._latest.copy(),
                "speed": np.clip(np.array([state.speed], np.float32), space["speed"].low, space["speed"].high),
                "yaw_rate": np.clip(np.array([state.yaw_rate], np.float32), space["yaw_rate"].low,
                                    space["yaw_rate"].high),
                "pose": self._relative(state).astype(np.float32)}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        """Drive `chunk_s` seconds with `action`; the frames come from the subclass's source."""
        if self._start is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode is over (terminated or truncated); call reset() to start another")
        action = validate_action(action, self.action_mode, self.action_space)
        before = self.ego.state
        controller = controller_for(action, self.action_mode, before)
        k = self._num_references()
        origin_time = self.states[-k].time_s
        new = self.ego.advance(controller, self.frames_per_step)
        ahead = max(1, lookahead_frames(self.fps) - (k - 1) - self.frames_per_step)
        preview = self.ego.preview(controller, ahead)
        values, valid = chunk_actions([*self.states[-k:], *new, *preview], origin_time, self._start.front_camera)
        frames = self._frames(new, values, valid)
        self.states.extend(new)
        self.steps += 1
        self.frame_count += len(frames)
        self._latest = frames[-1].copy()

        previous_progress = self.progress_m
        pose = self._relative(new[-1])
        self.progress_m, self.lateral_m = self.route.project(pose[:2], previous_progress)
        time_s = self.steps * self.chunk_s
        ctx = StepContext(self.steps, time_s, self.horizon_s, action, self._relative(before), pose, new[-1].speed,
                          self.route, previous_progress, self.progress_m, self.lateral_m)
        reward = float(self.reward_fn(ctx))
        terminated = bool(self.termination_fn(ctx))
        truncated = self.steps >= self.max_steps and not terminated
        self._done = terminated or truncated
        info = {"frames": frames, "time_s": time_s, "frame_count": self.frame_count,
                "ego_states": np.array([[s.time_s, *self._relative(s), s.speed, s.steering] for s in new]),
                "vista_actions": describe(values, valid), "progress_m": self.progress_m,
                "lateral_offset_m": self.lateral_m}
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """The camera mosaic of the latest frame, uint8 (H', W', 3) (None without a render mode)."""
        if self.render_mode is None:
            return None
        if self._start is None:
            raise RuntimeError("call reset() before render()")
        return camera_mosaic(self._latest[None], self.cameras)[0]

    @property
    def episode_states(self) -> list[EgoState]:
        """The ego at every frame of the episode so far (references included), world frame."""
        return list(self.states)


class WorldModelEnv(DrivingEnv):
    """Closed-loop simulation in a trained world model: `checkpoint` is an export folder, a .ckpt or a loaded model."""

    def __init__(self, checkpoint: str | Path | LoadedWorldModel, *, device: str = "auto", precision: str = "auto",
                 num_steps: int | None = None, cfg_scale: float | None = None, churn: float | None = None,
                 warp_start: float | None = None, **kwargs: Any) -> None:
        """`warp_start`: None (plain sampling), or the diffusion time at which every step's chunk begins from the
        last frame moved along the policy's commanded path (see worldmodel/rollout/warp_start.py)."""
        self.warp_start = None if warp_start is None else check_warp_tau(warp_start)
        if isinstance(checkpoint, LoadedWorldModel):
            # A loaded model keeps its weights' dtype (load_world_model's weights_dtype chose it).
            self.device = next(checkpoint.model.parameters()).device
            self.precision = sampling_precision(precision, self.device)
            self.loaded = checkpoint
        else:
            self.device = pick_device(device)
            self.precision = sampling_precision(precision, self.device)
            self.loaded = load_world_model(checkpoint, device=self.device, weights_dtype=self.precision.weights)
        self.sampler = with_sampler_overrides(self.loaded.sampler, num_steps, cfg_scale, churn)  # stays with this env
        super().__init__(ModelRig.from_run_config(self.loaded.config), **kwargs)
        # Each step samples one chunk of the model's training length; the engine holds sampler and autocast.
        self.engine = RolloutEngine(self.loaded.model, self.sampler, ChunkSchedule(
            self.rig.chunk_frames, self.first_reference, self.carry_frames, 1), self.precision.autocast)

    def _begin(self, start: SimStart, noise_seed: int) -> None:
        with torch.no_grad():
            self.latents = self.loaded.codec.encode_video(from_uint8(start.reference[None]).to(self.device))
        self.generator = torch.Generator(device=self.device).manual_seed(noise_seed)
        # No chunk's actions yet (the policy gives them step by step): only the calibration is checked here.
        self.engine.start = checked_warp_start(self.loaded.codec, [f"scenario {start.name}"], [start.calibration],
                                               [()], self.fps, self.warp_start,
                                               condition=takes_warp(self.loaded.model))

    @torch.no_grad()
    def _frames(self, states: list[EgoState], values: torch.Tensor, valid: torch.Tensor) -> np.ndarray:
        refs = self.latents
        k, n = refs.shape[1], len(states)
        chunk = self.engine.sample_chunk(refs, values.to(self.device), valid.to(self.device), self.generator)
        new = chunk[:, k:k + n]  # (1, n, V, C, h, w); frames past the step are dropped
        self.latents = torch.cat([refs, new], dim=1)[:, -self.carry_frames:]
        return to_uint8(self.loaded.codec.decode_video(new).float())[0]  # (n, V, H, W, 3)
