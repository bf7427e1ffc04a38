"""One rollout to run: reference frames, a per-chunk action plan, optional ground truth and ego states."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worldmodel.eval.ego_motion import pixel_offset_of
from worldmodel.rollout.actions import recorded_chunk_actions
from worldmodel.rollout.engine import ChunkActions, ChunkSchedule
from worldmodel.rollout.motion import FrontCamera, front_camera
from worldmodel.rollout.warp_start import CameraCalibration


@dataclass(frozen=True)
class ModelRig:
    """What the checkpoint was trained on: chunk length, frame rate, frame size (h, w) and views."""

    chunk_frames: int
    fps: float
    size: tuple[int, int]
    views: Any  # "front", "rig6" or a list of camera names, as the training reader took it

    @classmethod
    def from_run_config(cls, config: Mapping[str, Any]) -> ModelRig:
        """Read the validation reader of a run config (every export carries one)."""
        val = dict(config.get("data", {}).get("val") or {})
        missing = [k for k in ("num_frames", "fps", "size") if k not in val]
        if missing:
            raise ValueError(f"the checkpoint's run config has no data.val.{missing[0]}; cannot tell its clip format")
        return cls(int(val["num_frames"]), float(val["fps"]), (int(val["size"][0]), int(val["size"][1])),
                   val.get("views", "front"))


@dataclass
class EgoTrack:
    """Ego states of a rollout at every frame: times (t,), poses (t, 3) x y yaw, speeds (t,), steering (t,) or None."""

    timestamps: np.ndarray
    poses: np.ndarray
    speeds: np.ndarray
    steering: np.ndarray | None = None

    def meta(self, cameras: list[str], intrinsics: np.ndarray | None = None,
             extrinsics: np.ndarray | None = None) -> dict[str, Any]:
        """The ego-state keys of a clip's meta (CONTRACTS.md), for `recorded_chunk_actions`."""
        meta: dict[str, Any] = {"timestamps": self.timestamps, "ego_poses": self.poses, "ego_speed": self.speeds,
                                "cameras": cameras}
        if self.steering is not None:
            meta["ego_steering"] = self.steering
        if intrinsics is not None and extrinsics is not None:
            meta["intrinsics"], meta["extrinsics"] = intrinsics, extrinsics
        return meta


@dataclass
class RolloutJob:
    """Everything one rollout needs; frames are uint8 (t, v, h, w, 3)."""

    name: str
    seed: int
    reference: np.ndarray  # (k, v, h, w, 3) the first frames of the video
    plan: list[ChunkActions]  # per chunk: values (1, 19), valid (1, 5)
    cameras: list[str]
    fps: float
    num_frames: int  # frames of the written video, references included
    truth: Callable[[], Iterator[np.ndarray]] | None = None  # yields (v, h, w, 3) frames 0, 1, ...
    ego: EgoTrack | None = None
    info: dict[str, Any] = field(default_factory=dict)  # scenario or clip description for the manifest
    front: FrontCamera | None = None  # calibrated front camera: the run then reports the motion seen in its video
    calibration: CameraCalibration | None = None  # every camera's calibration, for the warp start


def calibration_of(intrinsics: Any, extrinsics: Any, pixel_offset: float) -> CameraCalibration | None:
    """Per-camera arrays (V, 3, 3) / (V, 4, 4) -> a CameraCalibration, None when either is unknown."""
    if intrinsics is None or extrinsics is None:
        return None
    return CameraCalibration(np.asarray(intrinsics, np.float64), np.asarray(extrinsics, np.float64), pixel_offset)


def plan_from_meta(meta: Mapping[str, Any], schedule: ChunkSchedule, size: tuple[int, int]) -> list[ChunkActions]:
    """Per-chunk actions measured from each chunk's first frame (all invalid without ego states)."""
    return recorded_chunk_actions(meta, schedule, size)


def track_from_meta(meta: Mapping[str, Any]) -> EgoTrack | None:
    """The ego states a reader recorded, or None when it has none (plain videos)."""
    if not all(k in meta for k in ("timestamps", "ego_poses", "ego_speed")):
        return None
    steering = meta.get("ego_steering")
    return EgoTrack(np.asarray(meta["timestamps"], np.float64), np.asarray(meta["ego_poses"], np.float64),
                    np.asarray(meta["ego_speed"], np.float64),
                    None if steering is None else np.asarray(steering, np.float64))


def clip_job(name: str, clip: Mapping[str, Any], schedule: ChunkSchedule, first_reference: int, num_frames: int,
             seed: int, info: dict[str, Any] | None = None, with_truth: bool = True) -> RolloutJob:
    """A job from a reader's clip: its first frames as references, its recorded motion as the plan."""
    frames = np.asarray(clip["frames"])
    meta = clip["meta"]
    truth = None
    if with_truth and frames.shape[0] >= num_frames:
        def truth() -> Iterator[np.ndarray]:
            yield from frames[:num_frames]
    cameras = list(meta["cameras"])
    return RolloutJob(name=name, seed=seed, reference=frames[:first_reference],
                      plan=plan_from_meta(meta, schedule, frames.shape[2:4]), cameras=cameras,
                      fps=float(meta["fps"]), num_frames=num_frames, truth=truth, ego=track_from_meta(meta),
                      info=dict(info or {}, scene=str(meta.get("scene", ""))),
                      front=front_camera(cameras, meta.get("intrinsics"), meta.get("extrinsics"),
                                         pixel_offset_of(meta)),
                      calibration=calibration_of(meta.get("intrinsics"), meta.get("extrinsics"), pixel_offset_of(meta)))
