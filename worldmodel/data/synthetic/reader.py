"""The package's default dataset: clips of independent procedural driving episodes."""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from worldmodel.data.actions import DEFAULT_ACTION_TIMES, actions_from_ego_states
from worldmodel.data.synthetic.cameras import CAMERAS, resolve_views
from worldmodel.data.synthetic.drive import random_script, simulate_drive, world_for_script
from worldmodel.data.synthetic.render import Renderer
from worldmodel.data.synthetic.world import WorldConfig

SPLITS = ("train", "val", "test")


class SyntheticDriving(torch.utils.data.Dataset):
    """Clips (CONTRACTS.md) rendered on the fly from a random world and a random ego script per index."""

    def __init__(self, num_clips: int = 1000, num_frames: int = 25, fps: float = 10.0,
                 views: str | Sequence[str] = "front", size: tuple[int, int] = (144, 256), seed: int = 0,
                 split: str = "train", action_times: Sequence[float] = DEFAULT_ACTION_TIMES,
                 action_origin_frame: int = 0, world: WorldConfig | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not 0 <= action_origin_frame < num_frames:
            raise ValueError(f"action_origin_frame {action_origin_frame} outside the clip's {num_frames} frames")
        self.num_clips, self.num_frames, self.fps = int(num_clips), int(num_frames), float(fps)
        self.cameras = resolve_views(views)
        self.size = (int(size[0]), int(size[1]))
        self.seed, self.split = int(seed), split
        self.action_times = tuple(float(t) for t in action_times)
        self.action_origin_frame = int(action_origin_frame)
        self.world_config = world if world is not None else WorldConfig()

    def __len__(self) -> int:
        return self.num_clips

    def episode_seed(self, index: int) -> tuple[int, int, int]:
        """(seed, split, index): distinct per split, so splits never share an episode."""
        return self.seed, zlib.crc32(self.split.encode()), int(index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range ({self.num_clips} clips)")
        seed = self.episode_seed(index)
        rng = np.random.default_rng(seed)
        clip_s = (self.num_frames - 1) / self.fps
        # Start some seconds into the drive so the ego is moving and mid-manoeuvre; simulate past the end
        # of the clip far enough for the last action time after the origin frame.
        lo, hi = int(1.0 * self.fps), int(6.0 * self.fps)
        last_origin_s = (hi + self.action_origin_frame) / self.fps
        duration = max(hi / self.fps + clip_s, last_origin_s + max(self.action_times)) + 0.5
        script = random_script(rng, duration)
        start_frame = int(rng.integers(lo, hi + 1))
        events = [t for t, _, _ in script[1:] if lo <= t * self.fps <= hi]
        if events and rng.random() < 0.6:
            # Mostly straight driving otherwise: put the action origin at a manoeuvre's onset half the time.
            onset = events[int(rng.integers(len(events)))] + rng.uniform(0.0, 1.5)
            start_frame = int(np.clip(round(onset * self.fps) - self.action_origin_frame, lo, hi))
        world = world_for_script(seed, script, self.world_config, duration_s=duration)
        log = simulate_drive(world, script, duration_s=duration, fps=self.fps)
        world.traffic.remove_conflicts(log.timestamps, log.poses[:, :2])
        frames_idx = np.arange(start_frame, start_frame + self.num_frames)
        renderer = Renderer(world, self.cameras, self.size)
        frames = np.stack([renderer.render(log.poses[k], log.timestamps[k]) for k in frames_idx])
        # The goal is defined in CAM_FRONT even when the clip shows other views.
        front = CAMERAS["CAM_FRONT"]
        camera = {"intrinsics": front.intrinsics(self.size), "camera_to_ego": front.camera_to_ego(),
                  "image_size": self.size}
        actions = actions_from_ego_states(
            timestamps=log.timestamps, positions=log.poses[:, :2], yaws=log.poses[:, 2], speeds=log.speeds,
            steering=log.steering, origin_time=float(log.timestamps[frames_idx[self.action_origin_frame]]),
            action_times=self.action_times, **camera)
        meta = {
            "dataset": "synthetic",
            "scene": f"synthetic-{self.split}-{self.seed}-{index:06d}",
            "timestamps": log.timestamps[frames_idx].astype(np.float64),
            "cameras": [c.name for c in self.cameras],
            "fps": self.fps,
            "intrinsics": renderer.intrinsics.astype(np.float32),
            "extrinsics": np.stack([c.camera_to_ego() for c in self.cameras]).astype(np.float32),
            "ego_poses": log.poses[frames_idx].astype(np.float64),
            "ego_speed": log.speeds[frames_idx].astype(np.float64),
            "ego_steering": log.steering[frames_idx].astype(np.float64),
        }
        return {"frames": frames, "actions": actions, "meta": meta}
