"""A scene resampled to the target fps (one file per camera per tick, the ego state per tick) and its index entries."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from worldmodel.data.nuscenes.canbus import CanBus
from worldmodel.data.nuscenes.scenes import FRONT, SceneTimeline
from worldmodel.data.timeline import resample_indices

INDEX_FORMAT = "worldmodel.nuscenes.clip/1"


@dataclass(frozen=True)
class Track:
    """Ticks of one scene (or of one indexed clip) at the target fps: everything a clip needs but pixels."""

    # `timestamps` and `ego_*` cover every tick; `files` and `sample_tokens` may stop earlier: an
    # indexed clip keeps ego states past its last frame for the action horizon, but no files.
    scene: str
    split: str
    scene_start_us: int  # timestamp of the scene's first front-camera frame; `timestamps` count from it
    first_tick: int  # the scene tick this track starts at (0 for a whole scene)
    cameras: tuple[str, ...]
    timestamps: np.ndarray  # (n,) float64 seconds since scene_start_us
    # (m, v) utf-8 bytes, relative to the dataset root: numpy holds str as UCS-4, four times the
    # memory for the million-odd camera frames of trainval, and a bytes array (unlike a list of
    # str) stays shared with forked data loader workers.
    files: np.ndarray
    sample_tokens: tuple[str, ...]  # (m,) the sample each front frame belongs to
    intrinsics: np.ndarray  # (v, 3, 3) float64, pixels of the recorded image
    image_sizes: np.ndarray  # (v, 2) int64 recorded (h, w)
    extrinsics: np.ndarray  # (v, 4, 4) float64 camera-to-ego
    front_intrinsics: np.ndarray  # (3, 3) CAM_FRONT, for the goal point whatever the views
    front_image_size: tuple[int, int]
    front_extrinsics: np.ndarray  # (4, 4)
    ego_poses: np.ndarray  # (n, 3) float64 world x, y (m), yaw (rad) at the front frames
    ego_speed: np.ndarray  # (n,) float64 m/s
    ego_steering: np.ndarray  # (n,) float64 rad, positive left; NaN where not recorded
    speed_source: str
    steering_source: str | None

    def file(self, tick: int, view: int) -> str:
        """Path of one camera frame, relative to the dataset root."""
        return self.files[tick, view].decode()


def paths_array(rows: Sequence[Sequence[str]], views: int) -> np.ndarray:
    """Paths (m rows of `views`) -> the (m, views) bytes array Track keeps."""
    return np.array([[p.encode() for p in row] for row in rows], dtype=bytes).reshape(len(rows), views)


def pose_speed(times: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Forward speed (m/s, negative when reversing) from ego poses (n, 3) by central differences in time."""
    if len(times) < 2:
        return np.zeros(len(times))
    vx, vy = np.gradient(poses[:, 0], times), np.gradient(poses[:, 1], times)
    return vx * np.cos(poses[:, 2]) + vy * np.sin(poses[:, 2])


def build_track(timeline: SceneTimeline, split: str, cameras: Sequence[str], fps: float,
                can: CanBus) -> tuple[Track, np.ndarray]:
    """Resample a scene on its front camera and align the other cameras to it.

    Returns the track and the offsets (n, v) in seconds between each camera's nearest frame and the
    front frame of each tick, for the caller to judge against its tolerance.
    """
    front = timeline.tracks[FRONT]
    start_us = int(front.timestamps_us[0])
    front_s = (front.timestamps_us - start_us) / 1e6
    ticks = resample_indices(front_s, fps)
    tick_us = front.timestamps_us[ticks]
    files, offsets = [], []
    for channel in cameras:
        track = timeline.tracks[channel]
        t = track.timestamps_us
        right = np.clip(np.searchsorted(t, tick_us), 0, len(t) - 1)
        left = np.clip(right - 1, 0, len(t) - 1)
        nearest = np.where(np.abs(t[left] - tick_us) <= np.abs(t[right] - tick_us), left, right)
        files.append([track.files[i] for i in nearest])
        offsets.append(np.abs(t[nearest] - tick_us) / 1e6)
    poses = front.ego_poses[ticks]
    signals = can.signals(timeline.name, tick_us)
    if signals.speed is not None:
        speed, speed_source = signals.speed, signals.speed_source
    else:
        # Differences over every front frame (12 Hz), not only the ticks, for the finest estimate.
        speed, speed_source = pose_speed(front_s, front.ego_poses)[ticks], "ego_pose"
    steering = signals.steering if signals.steering is not None else np.full(len(ticks), np.nan)
    calib = [timeline.tracks[c] for c in cameras]
    track = Track(
        scene=timeline.name, split=split, scene_start_us=start_us, first_tick=0, cameras=tuple(cameras),
        timestamps=front_s[ticks], files=paths_array(list(zip(*files)), len(cameras)),
        sample_tokens=tuple(front.sample_tokens[i] for i in ticks),
        intrinsics=np.stack([c.intrinsics for c in calib]),
        image_sizes=np.array([c.image_size for c in calib], dtype=np.int64),
        extrinsics=np.stack([c.camera_to_ego for c in calib]),
        front_intrinsics=front.intrinsics, front_image_size=front.image_size, front_extrinsics=front.camera_to_ego,
        ego_poses=poses, ego_speed=np.asarray(speed, dtype=np.float64), ego_steering=np.asarray(steering, np.float64),
        speed_source=speed_source, steering_source=signals.steering_source,
    )
    return track, np.stack(offsets, axis=1)


def window_end(track: Track, start: int, num_frames: int, origin_frame: int, action_times: Sequence[float]) -> int:
    """End tick (exclusive) of the ego states a clip needs: its frames and the action horizon after its origin."""
    horizon = track.timestamps[start + origin_frame] + max(action_times)
    # Ticks are recorded frame times, so the horizon needs the first tick at or after it.
    last = int(np.searchsorted(track.timestamps, horizon - 1e-6))
    return int(min(len(track.timestamps), max(start + num_frames, last + 1)))


def _floats(array: np.ndarray) -> Any:
    """Array -> nested lists with NaN as null (JSON has no NaN)."""
    return [None if not np.isfinite(x) else float(x) for x in array] if array.ndim == 1 else [_floats(a) for a in array]


def clip_entry(track: Track, start: int, num_frames: int, end: int, fps: float) -> dict[str, Any]:
    """JSON-serialisable entry of the clip starting at `start`, with ego states up to tick `end`."""
    frames = slice(start, start + num_frames)
    return {
        "format": INDEX_FORMAT, "dataset": "nuscenes", "scene": track.scene, "split": track.split,
        "scene_start_us": track.scene_start_us, "start_tick": track.first_tick + start, "num_frames": num_frames,
        "fps": fps, "cameras": list(track.cameras),
        "files": [[p.decode() for p in row] for row in track.files[frames]], "sample_tokens": list(track.sample_tokens[frames]),
        "timestamps": _floats(track.timestamps[start:end]),
        "intrinsics": _floats(track.intrinsics), "image_sizes": track.image_sizes.tolist(),
        "extrinsics": _floats(track.extrinsics),
        "front": {"intrinsics": _floats(track.front_intrinsics), "image_size": list(track.front_image_size),
                  "extrinsics": _floats(track.front_extrinsics)},
        "ego": {"poses": _floats(track.ego_poses[start:end]), "speed": _floats(track.ego_speed[start:end]),
                "steering": _floats(track.ego_steering[start:end]), "speed_source": track.speed_source,
                "steering_source": track.steering_source},
    }


def _array(values: Any) -> np.ndarray:
    return np.array(values, dtype=np.float64) if values is not None else np.array([], dtype=np.float64)


def track_from_entry(entry: dict[str, Any]) -> Track:
    """The inverse of clip_entry: a track holding exactly one clip, starting at its tick 0."""
    ego, front = entry["ego"], entry["front"]
    steering = np.array([np.nan if x is None else x for x in ego["steering"]], dtype=np.float64)
    return Track(
        scene=entry["scene"], split=entry["split"], scene_start_us=int(entry["scene_start_us"]),
        first_tick=int(entry["start_tick"]), cameras=tuple(entry["cameras"]),
        timestamps=_array(entry["timestamps"]),
        files=paths_array(entry["files"], len(entry["cameras"])),
        sample_tokens=tuple(entry["sample_tokens"]),
        intrinsics=_array(entry["intrinsics"]).reshape(-1, 3, 3),
        image_sizes=np.array(entry["image_sizes"], dtype=np.int64).reshape(-1, 2),
        extrinsics=_array(entry["extrinsics"]).reshape(-1, 4, 4),
        front_intrinsics=_array(front["intrinsics"]).reshape(3, 3),
        front_image_size=(int(front["image_size"][0]), int(front["image_size"][1])),
        front_extrinsics=_array(front["extrinsics"]).reshape(4, 4),
        ego_poses=_array(ego["poses"]).reshape(-1, 3), ego_speed=_array(ego["speed"]), ego_steering=steering,
        speed_source=ego["speed_source"], steering_source=ego["steering_source"],
    )
