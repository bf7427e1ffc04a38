"""Clips of the Waymo Open Dataset (perception, v1 TFRecord or v2 parquet) without TensorFlow."""
from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.data.actions import DEFAULT_ACTION_TIMES, actions_from_ego_states
from worldmodel.data.errors import CorruptFileError, DatasetError, SkipLog, require_root
from worldmodel.data.images import decode_image, resize_crop, resize_crop_intrinsics
from worldmodel.data.verify import VerifyReport, check_image_bytes, check_mode, damaged_files
from worldmodel.data.waymo.cameras import GOAL_CAMERA, camera_matrix, optical_to_ego, resolve_views
from worldmodel.data.waymo.index import check_entries, clip_entries, load_index
from worldmodel.data.waymo.v1 import find_v1_segments, read_v1_images, scan_v1_segment
from worldmodel.data.waymo.v2 import find_v2_segments, read_v2_images, scan_v2_segment

FORMATS = ("auto", "v1", "v2")
TOO_SHORT = "segment shorter than one clip"
CORRUPT_CLIP = "corrupt image or record (clip replaced by the next readable one)"
DAMAGED_CLIP = "damaged image or record (clip left out)"


def _expected_layout(root: Path, split: str) -> str:
    return (f"*.tfrecord segments under {root}/{split}/ (v1) or {root}/{split}/camera_image/*.parquet (v2)")


class WaymoClips(torch.utils.data.Dataset):
    """Clips (CONTRACTS.md) of Waymo segments: five cameras at `fps`, actions from the vehicle poses."""

    def __init__(self, root: str | Path, split: str = "training", format: str = "auto", num_frames: int = 25,
                 fps: float = 10.0, views: str | Sequence[str] | None = None, size: tuple[int, int] = (288, 512),
                 strict: bool = False, stride: int | None = None,
                 action_times: Sequence[float] = DEFAULT_ACTION_TIMES,
                 index: str | Path | Sequence[dict[str, Any]] | None = None) -> None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.root, self.split = Path(root), str(split)
        # Before the index or the scan: a missing root is nearly always an unset WAYMO_ROOT.
        require_root(self.root, "Waymo", "WAYMO_ROOT",
                     f"the splits (expected {_expected_layout(self.root, self.split)})")
        self.num_frames, self.fps, self.stride = int(num_frames), float(fps), stride
        self.cameras = resolve_views(views)
        self.size = (int(size[0]), int(size[1]))
        self.action_times = tuple(float(t) for t in action_times)
        self.skips = SkipLog(strict=strict)
        if index is not None:
            self.entries = check_entries(load_index(index), self.split, self.cameras, self.num_frames, self.fps)
            self.format = self.entries[0]["format"]
        else:
            self.format = self._detect_format(format)
            self.entries = self._scan()

    # ------------------------------------------------------------------
    # Scanning
    # ------------------------------------------------------------------

    def _detect_format(self, requested: str) -> str:
        split_dir = self.root / self.split
        found = {"v1": bool(find_v1_segments(split_dir)), "v2": bool(find_v2_segments(split_dir))}
        fmt = requested if requested != "auto" else ("v1" if found["v1"] else "v2")
        if found[fmt]:
            return fmt
        hint = ""
        if self.root.is_dir():
            splits = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            hint = f"; splits found under the root: {splits}" if splits else "; the root is empty"
        else:
            hint = "; the root does not exist"
        wanted = _expected_layout(self.root, self.split)
        raise DatasetError(f"no Waymo {'' if requested == 'auto' else requested + ' '}segments found: "
                           f"expected {wanted}{hint}")

    def _scan(self) -> list[dict[str, Any]]:
        split_dir = self.root / self.split
        if self.format == "v1":
            files, scan = find_v1_segments(split_dir), scan_v1_segment
        else:
            files, scan = find_v2_segments(split_dir), scan_v2_segment
        horizon = max(self.action_times, default=0.0)
        entries: list[dict[str, Any]] = []
        for path in files:
            segment = scan(path, self.root, self.cameras, self.skips)
            if segment is None:
                continue
            clips = []
            if len(segment.timestamps_us) > 0:
                clips = clip_entries(segment, self.format, self.split, self.cameras, self.num_frames, self.fps,
                                     self.stride, horizon)
            if not clips:
                self.skips.skip(TOO_SHORT, f"{path}: {len(segment.timestamps_us)} frames, "
                                           f"{self.num_frames} needed at {self.fps} fps")
            entries.extend(clips)
        return entries

    # ------------------------------------------------------------------
    # Index
    # ------------------------------------------------------------------

    def build_index(self) -> list[dict[str, Any]]:
        """JSON-serialisable clip entries (offsets or row ids, timestamps, poses, calibrations; no pixels)."""
        return copy.deepcopy(self.entries)

    def describe(self) -> dict[str, Any]:
        """Scenes, clips, frames and skipped items by reason."""
        return {"dataset": "waymo", "format": self.format, "root": str(self.root), "split": self.split,
                "cameras": list(self.cameras), "fps": self.fps,
                "scenes": len({e["segment"] for e in self.entries}), "clips": len(self.entries),
                "frames": len(self.entries) * self.num_frames, "skipped": dict(self.skips.counts),
                "skipped_examples": self.skips.as_dict()}

    # ------------------------------------------------------------------
    # Clips
    # ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The clip at `index`; a clip with a damaged image is counted in `skips` (or raises when strict)
        and replaced by the next readable clip, so a long run does not stop on one bad JPEG."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"clip {index} out of range ({len(self)} clips)")
        index %= len(self)
        for attempt in range(len(self)):
            try:
                return self._load(self.entries[(index + attempt) % len(self)])
            except CorruptFileError as err:
                self.skips.skip(CORRUPT_CLIP, err.path, err)
        raise DatasetError(f"no readable clip left in {self.root}/{self.split}: {self.skips.summary()}")

    def read_clip(self, index: int) -> dict[str, Any]:
        """Exactly clip `index`, never a substitute: a damaged image or record raises CorruptFileError naming it.

        Evaluation reads clips this way, so that every score belongs to the clip it is recorded under.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"clip {index} out of range ({len(self)} clips)")
        return self._load(self.entries[index % len(self)])

    def verify_files(self, mode: str, progress: bool = False) -> VerifyReport:
        """Read every clip's encoded images and check each as `mode` (full | header) says
        (worldmodel.data.verify); a clip with a damaged image or record is dropped and recorded in `skips`
        with the file, time and camera (strict: raised). Returns the VerifyReport."""
        check_mode(mode)

        def check(entry: dict[str, Any]) -> None:
            for stamp, images in zip(entry["timestamps_us"], self._encoded_images(entry)):
                for camera, data in zip(self.cameras, images):
                    check_image_bytes(data, f"{self.root / entry['file']} (t={stamp} us, camera {camera})", mode)

        checks = [(str(i), functools.partial(check, e)) for i, e in enumerate(self.entries)]
        bad = damaged_files(checks, progress, total=len(checks))
        for err in bad.values():
            self.skips.skip(DAMAGED_CLIP, str(err), err)
        # The images live inside segment records: the unit checked is the clip (all its images).
        report = VerifyReport(mode, len(checks), len(bad), len(bad), unit="clips")
        self.entries = [e for i, e in enumerate(self.entries) if str(i) not in bad]
        return report

    def _encoded_images(self, entry: dict[str, Any]) -> list[list[bytes]]:
        path = self.root / entry["file"]
        if entry["format"] == "v1":
            return read_v1_images(path, entry["frames"], self.cameras)
        columns = [entry["cameras"].index(c) for c in self.cameras]
        return read_v2_images(path, [[rows[k] for k in columns] for rows in entry["frames"]])

    def _load(self, entry: dict[str, Any]) -> dict[str, Any]:
        encoded = self._encoded_images(entry)
        frames = np.zeros((self.num_frames, len(self.cameras), *self.size, 3), np.uint8)
        source_sizes: dict[str, tuple[int, int]] = {}
        for t, (stamp, images) in enumerate(zip(entry["timestamps_us"], encoded)):
            for v, (camera, data) in enumerate(zip(self.cameras, images)):
                image = decode_image(data, source=f"{self.root / entry['file']} (t={stamp} us, camera {camera})")
                source_sizes.setdefault(camera, image.shape[:2])
                frames[t, v] = resize_crop(image, self.size)
        calibrations = entry["calibrations"]

        def intrinsics(camera: str) -> np.ndarray:
            calib = calibrations[camera]
            src = source_sizes.get(camera, (calib["height"], calib["width"]))
            return resize_crop_intrinsics(camera_matrix(calib["intrinsic"]), src, self.size)

        goal_camera: dict[str, Any] = {}
        if GOAL_CAMERA in calibrations:
            goal_camera = {"intrinsics": intrinsics(GOAL_CAMERA), "image_size": self.size,
                           "camera_to_ego": optical_to_ego(calibrations[GOAL_CAMERA]["extrinsic"])}
        track = entry["track"]
        stamps_us = np.asarray(entry["timestamps_us"], dtype=np.int64)
        track_times = (np.asarray(track["timestamps_us"], dtype=np.int64) - stamps_us[0]) * 1e-6  # origin at 0 s
        actions = actions_from_ego_states(
            timestamps=track_times, positions=np.stack([track["x"], track["y"]], axis=-1),
            yaws=np.asarray(track["yaw"]), speeds=np.asarray(track["speed"]), steering=None, origin_time=0.0, action_times=self.action_times,
            **goal_camera)
        meta = {
            "dataset": "waymo",
            "scene": entry["segment"],
            "segment": entry["segment"],
            "split": entry["split"],
            "format": entry["format"],
            "timestamps": stamps_us * 1e-6,
            "cameras": list(self.cameras),
            "fps": self.fps,
            "intrinsics": np.stack([intrinsics(c) for c in self.cameras]).astype(np.float32),
            "extrinsics": np.stack([optical_to_ego(calibrations[c]["extrinsic"]) for c in self.cameras]
                                   ).astype(np.float32),
            "ego_poses": np.asarray(entry["poses"], dtype=np.float64),
            "ego_speed": np.asarray(entry["speed"], dtype=np.float64),
        }
        return {"frames": frames, "actions": actions, "meta": meta}
