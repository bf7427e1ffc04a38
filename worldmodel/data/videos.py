"""Video files and numbered-frame folders as single-camera clip sources, and the reader of any tree of them.

Decoding goes through the ffmpeg binary that imageio-ffmpeg ships. A video's frame times come from
its container metadata (frame rate and duration, i.e. constant frame rate: frame i is at i / fps);
a clip decodes only its own frame range, starting with an ffmpeg input seek. A frame folder is a
directory of numbered .jpg / .png images, frame n at n / `frame_folder_fps` seconds.

These clips carry no camera calibration: `meta` has no `intrinsics` / `extrinsics` (nothing in a
bare video says what lens took it), and no ego actions (every action field invalid).
"""
from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import torch

from worldmodel.data.actions import DEFAULT_ACTION_TIMES, empty_actions
from worldmodel.data.errors import CorruptFileError, DatasetError, DatasetRootError, SkipLog
from worldmodel.data.images import decode_image, resize_crop
from worldmodel.data.timeline import clip_starts, resample_indices
from worldmodel.data.verify import (DAMAGED_IMAGE, DAMAGED_VIDEO, VerifyReport, check_image_file, check_mode,
                                    check_video_file, damaged_files)

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
FRONT = "CAM_FRONT"
_NUMBER = re.compile(r"(\d+)(?!.*\d)")


# ----------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoInfo:
    """Container metadata of one video file: frame rate, frame count and frame size (h, w)."""

    fps: float
    num_frames: int
    size: tuple[int, int]

    def timestamps(self) -> np.ndarray:
        """Frame times in seconds (constant frame rate), (num_frames,) float64."""
        return np.arange(self.num_frames, dtype=np.float64) / self.fps


def probe_video(path: str | Path) -> VideoInfo:
    """Frame rate, frame count (duration x fps, rounded down) and size from the header; no decoding."""
    try:
        frames = imageio_ffmpeg.read_frames(str(path))
        try:
            meta = next(frames)
        finally:
            frames.close()
    except (OSError, RuntimeError, StopIteration) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CorruptFileError(path, f"cannot read video ({first_line})") from err
    fps, duration = meta.get("fps") or 0.0, meta.get("duration") or 0.0
    if not fps > 0 or not duration > 0:
        raise CorruptFileError(path, f"video header has no frame rate or duration (fps={fps}, duration={duration})")
    w, h = meta["size"]
    return VideoInfo(float(fps), int(np.floor(duration * fps + 1e-6)), (int(h), int(w)))


def decode_video_frames(path: str | Path, indices: Sequence[int], info: VideoInfo | None = None) -> np.ndarray:
    """Source frames `indices` (increasing) of a video -> uint8 (n, h, w, 3), decoding only their range.

    ffmpeg seeks to half a frame before the first index (an input seek lands on the first frame at or
    after it) and decodes up to the last index.
    """
    info = probe_video(path) if info is None else info
    wanted = np.asarray(indices, dtype=np.int64)
    first, last = int(wanted.min()), int(wanted.max())
    seek = max(0.0, (first - 0.5) / info.fps)
    h, w = info.size
    needed = set(wanted.tolist())
    out: dict[int, np.ndarray] = {}
    try:
        reader = imageio_ffmpeg.read_frames(str(path), input_params=["-ss", f"{seek:.6f}"] if first else None)
        try:
            next(reader)
            for offset, raw in enumerate(reader):
                k = first + offset
                if k in needed:
                    out[k] = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
                if k >= last:
                    break
        finally:
            reader.close()
    except (OSError, RuntimeError, StopIteration) as err:
        raise CorruptFileError(path, f"cannot decode video frames {first}-{last} ({err})") from err
    if len(out) < len(needed):
        raise CorruptFileError(path, f"video ended after frame {first + len(out) - 1}, expected frames up to {last}")
    return np.stack([out[int(k)] for k in wanted])


def frame_number(path: str | Path) -> int | None:
    """The last run of digits in a file's stem (`000123.jpg` -> 123), or None."""
    match = _NUMBER.search(Path(path).stem)
    return int(match.group(1)) if match else None


def list_frame_files(folder: str | Path) -> list[Path]:
    """Numbered images (.jpg / .jpeg / .png) of a folder, sorted by their number; hidden files left out."""
    files = [p for p in Path(folder).iterdir()
             if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and frame_number(p) is not None]
    return sorted(files, key=lambda p: (frame_number(p), p.name))


def read_frame_files(paths: Sequence[str | Path], size: tuple[int, int]) -> np.ndarray:
    """Images -> uint8 (n, h, w, 3) resized and centre-cropped to `size`."""
    return np.stack([resize_crop(decode_image(p), size) for p in paths])


# ----------------------------------------------------------------------------------------------
# Clip entries: what `__getitem__` needs, JSON-serialisable
# ----------------------------------------------------------------------------------------------
def clip_entries(scene: str, kind: str, path: str, refs: Sequence[Any], timestamps: np.ndarray, fps: float,
                 num_frames: int, stride: int | None, skips: SkipLog, source_fps: float) -> list[dict[str, Any]]:
    """Resample one source (video frame indices or frame file names `refs`) to `fps` and cut clips.

    A source slower than `fps`, a gap that ends the grid early, or one too short for a clip is
    recorded in `skips` under its own reason.
    """
    if source_fps < fps * 0.99:
        skips.skip(f"source slower than the target {fps:g} fps", path)
        return []
    ticks = resample_indices(timestamps, fps)
    if timestamps[ticks[-1]] < timestamps[-1] - 1.5 / fps:
        skips.skip("gap in the recording (frames after it left out)", path)
    starts = clip_starts(len(ticks), num_frames, stride)
    if starts.size == 0:
        skips.skip(f"shorter than one clip of {num_frames} frames at {fps:g} fps", path)
    entries = []
    for s in starts:
        window = ticks[s : s + num_frames]
        entries.append({"scene": scene, "kind": kind, "path": path, "refs": [refs[int(i)] for i in window],
                        "timestamps": [float(timestamps[int(i)]) for i in window]})
    return entries


def load_clip_frames(root: Path, entry: dict[str, Any], size: tuple[int, int]) -> np.ndarray:
    """One clip entry's frames -> uint8 (t, 1, h, w, 3)."""
    source = root / entry["path"]
    if entry["kind"] == "video":
        frames = [resize_crop(np.ascontiguousarray(f), size) for f in decode_video_frames(source, entry["refs"])]
        return np.stack(frames)[:, None]
    return read_frame_files([source / name for name in entry["refs"]], size)[:, None]


def resolve_front_view(views: str | Sequence[str] | None) -> list[str]:
    """The one camera of a single-camera dataset: None, "front" or ["CAM_FRONT"]."""
    if views is None or views == "front" or list(views) == [FRONT] or views == FRONT:
        return [FRONT]
    raise ValueError(f"this dataset has one camera, {FRONT!r}; got views={views!r} (use views=front)")


# ----------------------------------------------------------------------------------------------
# Base reader
# ----------------------------------------------------------------------------------------------
class FileClipReader(torch.utils.data.Dataset):
    """Base of the single-camera file readers: scan or index, clip loading, skip accounting."""

    dataset_name = "files"

    def __init__(self, root: str | Path, split: str | None, num_frames: int, fps: float,
                 views: str | Sequence[str] | None, size: Sequence[int], strict: bool, stride: int | None,
                 action_times: Sequence[float], index: str | Path | None) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetRootError(f"{self.dataset_name} root {self.root} is not a directory; {self._root_hint()}")
        if num_frames < 1 or fps <= 0:
            raise ValueError(f"num_frames must be >= 1 and fps > 0, got {num_frames} and {fps}")
        self.split, self.num_frames, self.fps = split, int(num_frames), float(fps)
        self.cameras = resolve_front_view(views)
        self.size = (int(size[0]), int(size[1]))
        self.stride = None if stride is None else int(stride)
        self.action_times = tuple(float(t) for t in action_times)
        self.skips = SkipLog(strict=strict)
        self.entries = self._scan() if index is None else self._load_index(Path(index))

    def _root_hint(self) -> str:
        return "pass root=<folder of the dataset>"

    def _scan(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _load_index(self, path: Path) -> list[dict[str, Any]]:
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise DatasetError(f"cannot read clip index {path} ({err}); write one with worldmodel-prepare") from err
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "refs" in e for e in entries):
            raise DatasetError(f"{path} is not a {self.dataset_name} clip index (a JSON list of clip entries)")
        for entry in entries:
            if len(entry["refs"]) != self.num_frames:
                raise DatasetError(f"clip index {path} holds clips of {len(entry['refs'])} frames, this reader was "
                                   f"asked for {self.num_frames}; rebuild it with worldmodel-prepare")
            dt = np.diff(entry["timestamps"])
            if dt.size and abs(float(dt.mean()) - 1.0 / self.fps) > 0.25 / self.fps:
                raise DatasetError(f"clip index {path} was built at {1.0 / float(dt.mean()):.3g} fps, this reader "
                                   f"was asked for {self.fps:g}; rebuild it with worldmodel-prepare")
        return entries

    def __len__(self) -> int:
        return len(self.entries)

    def _actions(self, entry: dict[str, Any]) -> dict[str, Any]:
        return empty_actions(len(self.action_times))

    def _meta(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {"dataset": self.dataset_name, "scene": entry["scene"],
                "timestamps": np.asarray(entry["timestamps"], dtype=np.float64), "cameras": list(self.cameras),
                "fps": self.fps, "source": entry["path"]}

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.entries):
            raise IndexError(f"clip {index} out of range ({len(self.entries)} clips)")
        entry = self.entries[index]
        frames = load_clip_frames(self.root, entry, self.size)
        return {"frames": frames, "actions": self._actions(entry), "meta": self._meta(entry)}

    def build_index(self) -> list[dict[str, Any]]:
        """The clip entries (JSON-serialisable); pass the file back as `index=` to skip the scan."""
        return [dict(e) for e in self.entries]

    def verify_files(self, mode: str, progress: bool = False) -> VerifyReport:
        """Check every video and frame file the clips read, as `mode` (full | header) says
        (worldmodel.data.verify); the clips of a damaged file are left out and the file is recorded in
        `skips` with its reason (strict: raised). Returns the VerifyReport."""
        check_mode(mode)
        videos: dict[str, int] = {}  # file -> frames its clips read (0 .. n - 1)
        images: dict[str, None] = {}  # an ordered set: frame files in clip order
        for entry in self.entries:
            source = self.root / entry["path"]
            if entry["kind"] == "video":
                videos[str(source)] = max(videos.get(str(source), 0), max(entry["refs"]) + 1)
            else:
                images.update((str(source / name), None) for name in entry["refs"])
        checks = [(f, functools.partial(check_video_file, f, mode, n)) for f, n in videos.items()]
        checks += [(f, functools.partial(check_image_file, f, mode)) for f in images]
        bad = damaged_files(checks, progress, total=len(checks))
        for name, err in bad.items():
            self.skips.skip(DAMAGED_VIDEO if name in videos else DAMAGED_IMAGE, str(err), err)

        def readable(entry: dict[str, Any]) -> bool:
            source = self.root / entry["path"]
            if entry["kind"] == "video":
                return str(source) not in bad
            return not any(str(source / name) in bad for name in entry["refs"])

        kept = [e for e in self.entries if readable(e)]
        report = VerifyReport(mode, len(checks), len(bad), len(self.entries) - len(kept))
        self.entries = kept
        return report

    def describe(self) -> dict[str, Any]:
        """Scenes, clips, frames and skipped counts by reason."""
        return {"dataset": self.dataset_name, "root": str(self.root), "split": self.split,
                "scenes": len({e["scene"] for e in self.entries}), "clips": len(self.entries),
                "frames": len(self.entries) * self.num_frames * len(self.cameras), "fps": self.fps,
                "size": list(self.size), "cameras": list(self.cameras),
                "skipped": self.skips.as_dict(), "skipped_total": self.skips.total}


# ----------------------------------------------------------------------------------------------
# Any folder of videos
# ----------------------------------------------------------------------------------------------
class VideoFolderClips(FileClipReader):
    """Clips of every video file and numbered-frame folder under `root` (or `root/<split>`), front view only."""

    dataset_name = "videos"

    def __init__(self, root: str | Path, split: str | None = None, num_frames: int = 25, fps: float = 10.0,
                 views: str | Sequence[str] | None = None, size: Sequence[int] = (288, 512), strict: bool = False,
                 stride: int | None = None, action_times: Sequence[float] = DEFAULT_ACTION_TIMES,
                 index: str | Path | None = None, extensions: Sequence[str] = VIDEO_EXTENSIONS,
                 frame_folder_fps: float = 10.0) -> None:
        """`split` names a subfolder of `root` (None: the whole tree); the scene of a clip is its
        source's path relative to `root`."""
        self.extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        self.frame_folder_fps = float(frame_folder_fps)
        super().__init__(root, split, num_frames, fps, views, size, strict, stride, action_times, index)

    def _root_hint(self) -> str:
        return "set VIDEOS_ROOT (or root=) to a folder holding video files or folders of numbered frames"

    def _scan(self) -> list[dict[str, Any]]:
        top = self.root / self.split if self.split else self.root
        if not top.is_dir():
            raise DatasetError(f"split folder {top} does not exist; pass split=null to read all of {self.root}")
        entries: list[dict[str, Any]] = []
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            folder_path = Path(folder)
            for name in sorted(files):
                if not name.startswith(".") and Path(name).suffix.lower() in self.extensions:
                    entries += self._video_entries(folder_path / name)
            if any(Path(n).suffix.lower() in IMAGE_EXTENSIONS for n in files):
                entries += self._folder_entries(folder_path)
        if not entries and self.skips.total == 0:
            raise DatasetError(f"no video files ({', '.join(self.extensions)}) or numbered frame folders under {top}")
        return entries

    def _video_entries(self, path: Path) -> list[dict[str, Any]]:
        rel = path.relative_to(self.root).as_posix()
        try:
            info = probe_video(path)
        except CorruptFileError as err:
            self.skips.skip("unreadable video", path, err)
            return []
        return clip_entries(rel, "video", rel, range(info.num_frames), info.timestamps(), self.fps,
                            self.num_frames, self.stride, self.skips, info.fps)

    def _folder_entries(self, folder: Path) -> list[dict[str, Any]]:
        rel = folder.relative_to(self.root).as_posix() or "."
        files = list_frame_files(folder)
        if not files:
            self.skips.skip("image folder without numbered frames", folder)
            return []
        numbers = np.array([frame_number(p) for p in files], dtype=np.float64)
        if np.any(np.diff(numbers) <= 0):
            self.skips.skip("frame folder with repeated frame numbers", folder)
            return []
        timestamps = (numbers - numbers[0]) / self.frame_folder_fps
        return clip_entries(rel, "frames", rel, [p.name for p in files], timestamps, self.fps, self.num_frames,
                            self.stride, self.skips, self.frame_folder_fps)
