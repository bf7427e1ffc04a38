"""nuScenes clips (CONTRACTS.md) through nuscenes-devkit: key frames and sweeps at the target fps, six cameras.

Frames are the key frames and sweeps of each camera (12 Hz) resampled on CAM_FRONT's timestamps to
`fps`; the other cameras take their nearest frame to each front tick. `meta["timestamps"]` are
seconds since the scene's first CAM_FRONT frame (`meta["scene_start_us"]`, the devkit's clock).
Speeds come from the CAN bus where recorded (else from ego-pose differences; `meta["speed_source"]`
says which); the steering-wheel angle only from the CAN bus, and is invalid without it.
Without `index` the devkit tables are loaded once in `__init__` and dropped after the scan;
`__getitem__` only decodes JPEGs. Corrupt images met in data loader workers are counted in the
workers' copies of `skips` (merge them with `SkipLog.merge`).
"""
from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.data.actions import DEFAULT_ACTION_TIMES, actions_from_ego_states
from worldmodel.data.errors import CorruptFileError, DatasetError, SkipLog, require_root
from worldmodel.data.images import decode_image, resize_crop, resize_crop_intrinsics
from worldmodel.data.nuscenes.canbus import CanBus
from worldmodel.data.nuscenes.scenes import FRONT, load_nuscenes, resolve_cameras, scene_timeline, split_scene_names
from worldmodel.data.nuscenes.tracks import INDEX_FORMAT, Track, build_track, clip_entry, track_from_entry, window_end
from worldmodel.data.timeline import clip_starts
from worldmodel.data.verify import DAMAGED_IMAGE, VerifyReport, check_image_file, check_mode, damaged_files

# The cameras fire as the top lidar (20 Hz) sweeps past each of them, so the six frames of one
# sweep lie within one 50 ms rotation of each other; a nearest frame further away than this is
# from another sweep (a dropped frame), and the clip holding it is skipped.
DEFAULT_SYNC_TOLERANCE_S = 0.06


class NuScenesClips(torch.utils.data.Dataset):
    """Clips of nuScenes scenes (front camera or the six-camera rig) with Vista actions from ego poses and CAN bus."""

    def __init__(self, root: str | Path, split: str = "train", version: str = "v1.0-trainval", num_frames: int = 25,
                 fps: float = 10.0, views: str | Sequence[str] | None = None, size: tuple[int, int] = (288, 512),
                 strict: bool = False, stride: int | None = None,
                 action_times: Sequence[float] = DEFAULT_ACTION_TIMES, index: str | Path | None = None,
                 can_bus_root: str | Path | None = None, action_origin_frame: int = 0,
                 sync_tolerance: float = DEFAULT_SYNC_TOLERANCE_S) -> None:
        if num_frames < 1 or fps <= 0:
            raise ValueError(f"need num_frames >= 1 and fps > 0, got num_frames={num_frames}, fps={fps}")
        if not 0 <= action_origin_frame < num_frames:
            raise ValueError(f"action_origin_frame {action_origin_frame} outside the clip's {num_frames} frames")
        if not action_times:
            raise ValueError("action_times must name at least one time, e.g. [0.5, 1.0, 1.5, 2.0]")
        self.root, self.split, self.version = Path(root), split, version
        # Before the index or the tables: a missing root is nearly always an unset NUSCENES_ROOT.
        require_root(self.root, "nuScenes", "NUSCENES_ROOT", f"samples/, sweeps/ and {version}/")
        self.num_frames, self.fps, self.stride = int(num_frames), float(fps), stride
        self.cameras = resolve_cameras(views)
        self.size = (int(size[0]), int(size[1]))
        self.action_times = tuple(float(t) for t in action_times)
        self.action_origin_frame = int(action_origin_frame)
        self.sync_tolerance = float(sync_tolerance)
        self.can_bus_root = Path(can_bus_root) if can_bus_root is not None else self.root
        self.skips = SkipLog(strict=strict)
        self._tracks: list[Track] = []
        self._clips: list[tuple[int, int]] = []  # (track, start tick)
        self._bad_clips: set[int] = set()
        self._bad_files: set[str] = set()
        self.scenes_in_split: int | None = None
        if index is not None:
            self._load_index(Path(index))
        else:
            self._scan()

    # ------------------------------------------------------------------ building
    def _scan(self) -> None:
        nusc = load_nuscenes(self.root, self.version)
        names = split_scene_names(self.version, self.split)
        can = CanBus(self.can_bus_root, strict=self.skips.strict)
        channels = self.cameras if FRONT in self.cameras else (FRONT, *self.cameras)
        # Scenes of the split missing from these tables (a partial download, mini) are simply absent.
        scenes = sorted((s for s in nusc.scene if s["name"] in names), key=lambda s: s["name"])
        self.scenes_in_split = len(scenes)
        for scene in scenes:
            try:
                timeline = scene_timeline(nusc, scene, channels)
            except KeyError as err:
                self.skips.skip("broken table reference", f"{scene['name']}: no record {err} in {self.version}")
                continue
            if timeline.missing:
                self.skips.skip("missing camera", f"{scene['name']}: no {', '.join(timeline.missing)} frames")
                continue
            track, offsets = build_track(timeline, self.split, self.cameras, self.fps, can)
            starts = clip_starts(len(track.timestamps), self.num_frames, self.stride)
            if starts.size == 0:
                self.skips.skip("scene shorter than num_frames", f"{scene['name']}: {len(track.timestamps)} ticks at "
                                f"{self.fps:g} Hz, clips need {self.num_frames}")
                continue
            self._add_track(track, starts, offsets)

    def _add_track(self, track: Track, starts: np.ndarray, offsets: np.ndarray) -> None:
        late = offsets > self.sync_tolerance + 1e-9  # (n, v)
        kept = []
        for start in starts.tolist():
            window = late[start : start + self.num_frames]
            if window.any():
                tick, view = np.argwhere(window)[0]
                tick += start
                self.skips.skip("camera out of sync", f"{track.scene} tick {tick}: {self.cameras[view]} frame "
                                f"{offsets[tick, view] * 1e3:.0f} ms from CAM_FRONT ({track.file(tick, view)})")
                continue
            kept.append(start)
        if kept:
            self._tracks.append(track)
            self._clips.extend((len(self._tracks) - 1, start) for start in kept)

    def _load_index(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise DatasetError(f"{path}: clip index not found; write one with NuScenesClips(...).build_index() "
                               "(worldmodel-prepare) or pass index=None to scan the dataset") from err
        except json.JSONDecodeError as err:
            raise CorruptFileError(path, f"not a JSON clip index ({err})") from err
        entries = data["clips"] if isinstance(data, dict) and "clips" in data else data
        if not isinstance(entries, list):
            raise CorruptFileError(path, "expected a list of clip entries (or {'clips': [...]})")
        other_splits: Counter[str] = Counter()
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or entry.get("format") != INDEX_FORMAT:
                raise CorruptFileError(path, f"entry {i} is not a nuScenes clip entry ({INDEX_FORMAT})")
            try:
                if entry["split"] != self.split:
                    other_splits[entry["split"]] += 1
                    continue
                built = (entry["num_frames"], float(entry["fps"]), tuple(entry["cameras"]))
                track = track_from_entry(entry)
            except (KeyError, TypeError, ValueError) as err:
                raise CorruptFileError(path, f"entry {i} is malformed ({err!r})") from err
            if built != (self.num_frames, self.fps, self.cameras):
                raise DatasetError(
                    f"{path}: built for num_frames={built[0]}, fps={built[1]:g}, views={list(built[2])}, but this "
                    f"dataset asks num_frames={self.num_frames}, fps={self.fps:g}, views={list(self.cameras)}: "
                    "rebuild the index or pass the options it was built with")
            self._tracks.append(track)
            self._clips.append((len(self._tracks) - 1, 0))
        if not self._clips and other_splits:
            raise DatasetError(f"{path} has no clips of split {self.split!r}, only {dict(other_splits)}")

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self._clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"clip {index} out of range ({len(self)} clips)")
        index %= len(self)
        # A clip with a corrupt image is counted once and replaced by the next readable clip, so a
        # training run keeps going; strict=True raises on the first one instead (naming the file).
        for step in range(len(self)):
            i = (index + step) % len(self)
            if i in self._bad_clips:
                continue
            try:
                return self._read_clip(i)
            except CorruptFileError as err:
                if self.skips.strict:
                    raise
                self._bad_clips.add(i)
                if err.path not in self._bad_files:
                    self._bad_files.add(err.path)
                    self.skips.skip("corrupt image", err.path, err)
        raise DatasetError(f"every clip of {self.root} has a corrupt or missing image:\n{self.skips.summary()}")

    def read_clip(self, index: int) -> dict[str, Any]:
        """Exactly clip `index`, never a substitute: a damaged image raises CorruptFileError naming it.

        Evaluation reads clips this way, so that every score belongs to the clip it is recorded under.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"clip {index} out of range ({len(self)} clips)")
        return self._read_clip(index % len(self))

    def _read_clip(self, i: int) -> dict[str, Any]:
        ti, start = self._clips[i]
        track, t, v = self._tracks[ti], self.num_frames, len(self.cameras)
        frames = np.empty((t, v, *self.size, 3), dtype=np.uint8)
        for k in range(t):
            for j in range(v):
                frames[k, j] = resize_crop(decode_image(self.root / track.file(start + k, j)), self.size)
        intrinsics = np.stack([resize_crop_intrinsics(track.intrinsics[j], tuple(track.image_sizes[j]), self.size)
                               for j in range(v)])
        front_k = resize_crop_intrinsics(track.front_intrinsics, track.front_image_size, self.size)
        window = slice(start, window_end(track, start, t, self.action_origin_frame, self.action_times))
        steering = track.ego_steering[window]
        actions = actions_from_ego_states(
            timestamps=track.timestamps[window], positions=track.ego_poses[window, :2], yaws=track.ego_poses[window, 2],
            speeds=track.ego_speed[window], steering=steering if np.all(np.isfinite(steering)) else None,
            origin_time=float(track.timestamps[start + self.action_origin_frame]), action_times=self.action_times,
            intrinsics=front_k, camera_to_ego=track.front_extrinsics, image_size=self.size)
        clip = slice(start, start + t)
        meta = {
            "dataset": "nuscenes",
            "scene": track.scene,
            "split": track.split,
            "sample_token": track.sample_tokens[start],
            "start_tick": track.first_tick + start,
            "scene_start_us": track.scene_start_us,
            "timestamps": track.timestamps[clip].astype(np.float64),
            "cameras": list(self.cameras),
            "fps": self.fps,
            "intrinsics": intrinsics.astype(np.float32),
            "extrinsics": track.extrinsics.astype(np.float32),
            "ego_poses": track.ego_poses[clip].astype(np.float64),
            "ego_speed": track.ego_speed[clip].astype(np.float64),
            "speed_source": track.speed_source,
            "steering_source": track.steering_source,
        }
        if np.all(np.isfinite(track.ego_steering[clip])):
            meta["ego_steering"] = track.ego_steering[clip].astype(np.float64)
        return {"frames": frames, "actions": actions, "meta": meta}

    # ------------------------------------------------------------------ reporting
    def build_index(self) -> list[dict[str, Any]]:
        """JSON-serialisable entries, one per readable clip; `index=` rebuilds this dataset from them alone."""
        entries = []
        for i, (ti, start) in enumerate(self._clips):
            if i in self._bad_clips:
                continue
            track = self._tracks[ti]
            end = window_end(track, start, self.num_frames, self.action_origin_frame, self.action_times)
            entries.append(clip_entry(track, start, self.num_frames, end, self.fps))
        return entries

    def verify_files(self, mode: str, progress: bool = False) -> VerifyReport:
        """Check every camera image the clips read, as `mode` (full | header) says (worldmodel.data.verify);
        the clips that need a damaged image are dropped and the image recorded in `skips` with its reason
        (strict: raised). Returns the VerifyReport."""
        check_mode(mode)
        views = range(len(self.cameras))

        def files_of(clip: tuple[int, int]) -> list[str]:
            track, start = self._tracks[clip[0]], clip[1]
            return [track.file(start + k, j) for k in range(self.num_frames) for j in views]

        files = dict.fromkeys(f for clip in self._clips for f in files_of(clip))  # ordered, each file once
        checks = [(f, functools.partial(check_image_file, self.root / f, mode)) for f in files]
        bad = damaged_files(checks, progress, total=len(checks))
        for err in bad.values():
            self._bad_files.add(err.path)
            self.skips.skip(DAMAGED_IMAGE, str(err), err)
        kept = [i for i, clip in enumerate(self._clips) if not any(f in bad for f in files_of(clip))]
        renumbered = {old: new for new, old in enumerate(kept)}
        report = VerifyReport(mode, len(checks), len(bad), len(self._clips) - len(kept))
        self._clips = [self._clips[i] for i in kept]
        self._bad_clips = {renumbered[i] for i in self._bad_clips if i in renumbered}
        return report

    def describe(self) -> dict[str, Any]:
        """Scenes, clips, frames, where speed and steering came from, and what was skipped by reason."""
        readable = [clip for i, clip in enumerate(self._clips) if i not in self._bad_clips]  # as build_index
        used = {ti for ti, _ in readable}
        scenes = {self._tracks[ti].scene for ti in used}
        return {
            "dataset": "nuscenes", "version": self.version, "split": self.split, "cameras": list(self.cameras),
            "fps": self.fps, "num_frames": self.num_frames,
            "scenes": len(scenes), "scenes_in_split": self.scenes_in_split,
            "clips": len(readable), "frames": len(readable) * self.num_frames,
            "images": len(readable) * self.num_frames * len(self.cameras),
            "speed_sources": dict(Counter(self._tracks[ti].speed_source for ti, _ in readable)),
            "clips_with_steering": sum(self._tracks[ti].steering_source is not None for ti, _ in readable),
            "skipped": self.skips.as_dict(), "skipped_total": self.skips.total,
        }
