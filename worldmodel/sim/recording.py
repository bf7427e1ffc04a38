"""Episodes to disk: per-camera mp4s, the camera mosaic, a contact sheet (the rollout's RunWriter) and episode.json.

`RecordEpisodes(env, folder)` is a Gymnasium wrapper: every episode lands in folder/episodeNNN/ with
CAM_*.mp4, generated.mp4 (the mosaic), contact_sheet.png and episode.json (scenario, seed, actions,
rewards, ego states at every frame, Vista actions per step).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from worldmodel.files import atomic_write_json
from worldmodel.rollout.sinks import RunFiles, RunWriter


def _json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return np.round(value.astype(np.float64), 4).tolist() if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


class EpisodeRecorder:
    """One episode's videos and log; frames (n, V, H, W, 3) are pushed as they come, with truth frames if known."""

    def __init__(self, folder: Path, cameras: list[str], fps: float, max_frames: int, num_reference: int,
                 with_truth: bool = False) -> None:
        self.folder = Path(folder)
        self.writer = RunWriter(self.folder, cameras, fps, max_frames, num_reference, with_truth)
        self.log: dict[str, Any] = {"steps": []}
        self.closed = False

    def push(self, frames: np.ndarray, truth: np.ndarray | None = None) -> None:
        for i, frame in enumerate(frames):
            self.writer.push(frame, None if truth is None else truth[i])

    def log_step(self, action: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.log["steps"].append({"action": _json(np.asarray(action)), "reward": float(reward),
                                  "terminated": bool(terminated), "truncated": bool(truncated),
                                  **{k: _json(v) for k, v in info.items() if k not in ("frames", "route")}})

    def close(self, failed: bool = False, **extra: Any) -> RunFiles | None:
        """Finish the videos and write episode.json (nothing but abandoned videos with `failed`)."""
        if self.closed:
            return None
        self.closed = True
        files = self.writer.close(failed=failed)
        if not failed:
            self.log.update({k: _json(v) for k, v in extra.items()})
            self.log["return"] = float(sum(s["reward"] for s in self.log["steps"]))
            atomic_write_json(self.folder / "episode.json", self.log)
        return files


class RecordEpisodes(gym.Wrapper):
    """Records every episode of a driving env into folder/episode000, episode001, ..."""

    def __init__(self, env: gym.Env, folder: str | Path) -> None:
        super().__init__(env)
        self.folder = Path(folder)
        self.episode = -1
        self.recorder: EpisodeRecorder | None = None
        self.recorded: list[Path] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._finish()
        obs, info = self.env.reset(seed=seed, options=options)
        self.episode += 1
        base = self.env.unwrapped
        max_frames = base.first_reference + base.max_steps * base.frames_per_step
        self.recorder = EpisodeRecorder(self.folder / f"episode{self.episode:03d}", list(info["cameras"]), info["fps"],
                                        max_frames, len(info["frames"]))
        self.recorder.log.update(seed=seed, scenario=info["scenario"], fps=info["fps"], cameras=info["cameras"],
                                 action_mode=base.action_mode, chunk_s=base.chunk_s)
        self.recorder.push(info["frames"])
        return obs, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.recorder is not None:
            self.recorder.push(info["frames"])
            self.recorder.log_step(action, reward, terminated, truncated, info)
            if terminated or truncated:
                self._finish()
        return obs, reward, terminated, truncated, info

    def _finish(self) -> None:
        if self.recorder is not None and not self.recorder.closed:
            base = self.env.unwrapped
            self.recorder.close(ego_states=np.array([[s.time_s, s.x, s.y, s.yaw, s.speed, s.steering]
                                                    for s in base.episode_states]))
            self.recorded.append(self.recorder.folder)
        self.recorder = None

    def close(self) -> None:
        self._finish()
        super().close()
