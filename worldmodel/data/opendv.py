"""OpenDV-YouTube (DriveAGI / GenAD): front-camera driving videos with language commands and captions.

Layout (DriveAGI `opendv/`, root = the `OpenDV-YouTube` folder):
```
<root>/videos/<youtuber>/<videoid>.{mp4,webm,mkv}        raw downloads (youtube_download.py)
<root>/full_images/<youtuber>/<videoid>/000000000.jpg   10 Hz frames of the Train split (video2img.py)
<root>/val_images/<youtuber>/<videoid>/000000000.jpg    10 Hz frames of the Val split
<root>/../meta/OpenDV-YouTube.json  (or <root>/meta/...)  the meta list (meta_preprocess.py)
```
`<youtuber>` has spaces replaced by underscores, as DriveAGI writes it. A meta record holds
`videoid`, `youtuber`, `split` ("Train" / "Val"), `start_discard` / `end_discard` (seconds cut at
the start / end), `length`, ... Extracted frames already start `start_discard` seconds in (frame
k at start_discard + k / 10 s); a raw video is cut to [start_discard, duration - end_discard].
Where a video has both, the frames are read.

Language (OpenDV-YouTube-Language, `10hz_YouTube_train_split{0..9}.json`, `10hz_YouTube_val.json`):
records `{"cmd": int, "blip": str, "folder": ".../<youtuber>/<videoid>", "first_frame": "000000040.jpg",
"last_frame": "000000079.jpg"}` in the 10 Hz frame numbering above (both frames included). A clip
takes the annotation that overlaps most of its frames (the earliest on a tie): its command goes
to `actions["command"]` (the only valid action field: OpenDV has no ego motion) and its BLIP
caption to `meta["text"]`. Clips without one have no valid action and `meta["text"] = None`.

OpenDV `cmd` -> `Command`:

| cmd | OpenDV                     | Command           |
|-----|----------------------------|-------------------|
| 0   | go straight                | STRAIGHT          |
| 1   | pass the intersection      | STRAIGHT          |
| 2   | turn left                  | LEFT              |
| 3   | turn right                 | RIGHT             |
| 4   | change to the left lane    | LANE_CHANGE_LEFT  |
| 5   | change to the right lane   | LANE_CHANGE_RIGHT |
| 6   | go to the left lane branch | LEFT              |
| 7   | go to the right lane branch| RIGHT             |
| 8   | pass the crosswalk         | STRAIGHT          |
| 9   | pass the railroad          | STRAIGHT          |
| 10  | merge                      | OTHER             |
| 11  | make a U-turn              | U_TURN            |
| 12  | stop (slow down)           | STOP              |
| 13  | deviate                    | OTHER             |

An unknown cmd leaves the command invalid.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data.actions import DEFAULT_ACTION_TIMES, Command, empty_actions
from worldmodel.data.errors import CorruptFileError, DatasetError
from worldmodel.data.videos import FileClipReader, clip_entries, frame_number, list_frame_files, probe_video

OPENDV_FPS = 10.0
OPENDV_VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv")
IMAGE_FOLDERS = {"train": "full_images", "val": "val_images"}
META_CANDIDATES = ("meta/OpenDV-YouTube.json", "OpenDV-YouTube.json", "../meta/OpenDV-YouTube.json")
LANGUAGE_FILES = {"train": "10hz_YouTube_train_split*.json", "val": "10hz_YouTube_val.json"}

OPENDV_COMMANDS: dict[int, tuple[str, Command]] = {
    0: ("go straight", Command.STRAIGHT),
    1: ("pass the intersection", Command.STRAIGHT),
    2: ("turn left", Command.LEFT),
    3: ("turn right", Command.RIGHT),
    4: ("change to the left lane", Command.LANE_CHANGE_LEFT),
    5: ("change to the right lane", Command.LANE_CHANGE_RIGHT),
    6: ("go to the left lane branch", Command.LEFT),
    7: ("go to the right lane branch", Command.RIGHT),
    8: ("pass the crosswalk", Command.STRAIGHT),
    9: ("pass the railroad", Command.STRAIGHT),
    10: ("merge", Command.OTHER),
    11: ("make a U-turn", Command.U_TURN),
    12: ("stop", Command.STOP),
    13: ("deviate", Command.OTHER),
}


def opendv_command(cmd: int) -> Command | None:
    """OpenDV-YouTube-Language `cmd` (0-13) -> our `Command`, or None when unknown."""
    entry = OPENDV_COMMANDS.get(int(cmd))
    return None if entry is None else entry[1]


class OpenDVClips(FileClipReader):
    """Front-camera clips of OpenDV-YouTube videos or extracted frames, with language commands when given."""

    dataset_name = "opendv"

    def __init__(self, root: str | Path, split: str = "train", meta: str | Path | None = None, num_frames: int = 25,
                 fps: float = 10.0, views: str | Sequence[str] | None = None, size: Sequence[int] = (288, 512),
                 strict: bool = False, stride: int | None = None,
                 action_times: Sequence[float] = DEFAULT_ACTION_TIMES, index: str | Path | None = None,
                 language: str | Path | None = None) -> None:
        """`meta`: the OpenDV-YouTube.json (default: looked up beside `root`); `language`: one annotation
        JSON or the folder of OpenDV-YouTube-Language files (None: no commands or captions)."""
        self.meta_path = None if meta is None else Path(meta).expanduser()
        self.language = None if language is None else Path(language).expanduser()
        super().__init__(root, str(split).lower(), num_frames, fps, views, size, strict, stride, action_times, index)

    def _root_hint(self) -> str:
        return "set OPENDV_ROOT (or root=) to the OpenDV-YouTube folder holding videos/ or full_images/"

    # ------------------------------------------------------------------------------------------
    # Meta and language files
    # ------------------------------------------------------------------------------------------
    def _meta_records(self) -> list[dict[str, Any]]:
        candidates = [self.meta_path] if self.meta_path else [self.root / c for c in META_CANDIDATES]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise DatasetError(f"OpenDV meta file not found (looked for {', '.join(str(p) for p in candidates)}); "
                               "make it with DriveAGI's scripts/meta_preprocess.py and pass meta=<path>")
        try:
            records = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise DatasetError(f"cannot read OpenDV meta file {path} ({err})") from err
        if not isinstance(records, list):
            raise DatasetError(f"{path} is not an OpenDV meta file (expected a JSON list of video records)")
        chosen = [r for r in records if isinstance(r, dict) and str(r.get("split", "")).lower() == self.split]
        if not chosen:
            splits = sorted({str(r.get("split")) for r in records if isinstance(r, dict)})
            raise DatasetError(f"{path} has no videos of split {self.split!r} (its splits: {splits})")
        return chosen

    def _language_files(self) -> list[Path]:
        assert self.language is not None
        if self.language.is_file():
            return [self.language]
        if self.language.is_dir():
            files = sorted(self.language.glob(LANGUAGE_FILES.get(self.split, f"*{self.split}*.json")))
            if files:
                return files
        raise DatasetError(f"no OpenDV language annotations at {self.language} (expected a JSON file or a folder "
                           f"with {LANGUAGE_FILES.get(self.split, '*.json')})")

    def _annotations(self, videoids: set[str]) -> dict[str, dict[str, Any]]:
        """videoid -> arrays first (n,), last (n,), cmd (n,) and captions, for the chosen videos."""
        if self.language is None:
            return {}
        rows: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
        for path in self._language_files():
            try:
                records = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                raise DatasetError(f"cannot read OpenDV language file {path} ({err})") from err
            for r in records if isinstance(records, list) else []:
                vid = Path(str(r.get("folder", "")).replace("\\", "/")).name
                if vid not in videoids:
                    continue
                first, last = frame_number(str(r.get("first_frame", ""))), frame_number(str(r.get("last_frame", "")))
                if first is None or last is None or "cmd" not in r:
                    self.skips.skip("language record without frames or cmd", f"{path}: {r.get('folder')}")
                    continue
                rows[vid].append((first, last, int(r["cmd"]), str(r.get("blip", ""))))
        out = {}
        for vid, items in rows.items():
            items.sort()
            out[vid] = {"first": np.array([i[0] for i in items]), "last": np.array([i[1] for i in items]),
                        "cmd": [i[2] for i in items], "blip": [i[3] for i in items]}
        return out

    # ------------------------------------------------------------------------------------------
    # Scan
    # ------------------------------------------------------------------------------------------
    def _scan(self) -> list[dict[str, Any]]:
        records = self._meta_records()
        annotations = self._annotations({str(r.get("videoid")) for r in records})
        entries: list[dict[str, Any]] = []
        for record in records:
            if not record.get("videoid") or not record.get("youtuber"):
                self.skips.skip("meta record without videoid or youtuber", json.dumps(record)[:80])
                continue
            video_entries = self._video_entries(record)
            notes = annotations.get(str(record["videoid"]))
            for entry in video_entries:
                self._annotate(entry, notes)
            entries += video_entries
        return entries

    def _video_entries(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        youtuber, vid = str(record["youtuber"]).replace(" ", "_"), str(record["videoid"])
        scene = f"{youtuber}/{vid}"
        start, end = float(record.get("start_discard") or 0.0), float(record.get("end_discard") or 0.0)
        folders = [IMAGE_FOLDERS.get(self.split, f"{self.split}_images")] + sorted(set(IMAGE_FOLDERS.values()))
        for name in folders:
            frame_dir = self.root / name / youtuber / vid
            files = list_frame_files(frame_dir) if frame_dir.is_dir() else []
            if files:
                numbers = np.array([frame_number(p) for p in files])
                entries = clip_entries(scene, "frames", frame_dir.relative_to(self.root).as_posix(),
                                       [p.name for p in files], start + numbers / OPENDV_FPS, self.fps,
                                       self.num_frames, self.stride, self.skips, OPENDV_FPS)
                return self._with_frame_numbers(entries, start, record)
        videos = [self.root / "videos" / youtuber / f"{vid}{ext}" for ext in OPENDV_VIDEO_EXTENSIONS]
        video = next((p for p in videos if p.is_file()), None)
        if video is None:
            self.skips.skip("not downloaded (no frames folder or video file)", self.root / "videos" / youtuber / vid)
            return []
        try:
            info = probe_video(video)
        except CorruptFileError as err:
            self.skips.skip("unreadable video", video, err)
            return []
        t = info.timestamps()
        keep = np.nonzero((t >= start - 1e-6) & (t <= info.num_frames / info.fps - end + 1e-6))[0]
        if keep.size == 0:
            self.skips.skip("nothing left after the discarded start and end", video)
            return []
        entries = clip_entries(scene, "video", video.relative_to(self.root).as_posix(), keep.tolist(), t[keep],
                               self.fps, self.num_frames, self.stride, self.skips, info.fps)
        return self._with_frame_numbers(entries, start, record)

    @staticmethod
    def _with_frame_numbers(entries: list[dict[str, Any]], start: float,
                            record: dict[str, Any]) -> list[dict[str, Any]]:
        for entry in entries:
            ticks = np.rint((np.asarray(entry["timestamps"]) - start) * OPENDV_FPS).astype(int)
            entry.update(opendv_frames=[int(ticks[0]), int(ticks[-1])], youtuber=str(record["youtuber"]),
                         videoid=str(record["videoid"]))
        return entries

    @staticmethod
    def _annotate(entry: dict[str, Any], notes: dict[str, Any] | None) -> None:
        entry["cmd"], entry["text"] = None, None
        if not notes:
            return
        a, b = entry["opendv_frames"]
        overlap = np.minimum(b, notes["last"]) - np.maximum(a, notes["first"]) + 1
        best = int(np.argmax(overlap))
        if overlap[best] > 0:
            entry["cmd"], entry["text"] = int(notes["cmd"][best]), notes["blip"][best]

    # ------------------------------------------------------------------------------------------
    # Clips
    # ------------------------------------------------------------------------------------------
    def _actions(self, entry: dict[str, Any]) -> dict[str, Any]:
        actions = empty_actions(len(self.action_times))
        command = None if entry.get("cmd") is None else opendv_command(entry["cmd"])
        if command is not None:
            actions["command"] = np.int64(command)
            actions["valid"]["command"] = True
        return actions

    def _meta(self, entry: dict[str, Any]) -> dict[str, Any]:
        meta = super()._meta(entry)
        meta.update(text=entry.get("text"), opendv_cmd=entry.get("cmd"), youtuber=entry.get("youtuber"),
                    videoid=entry.get("videoid"), opendv_frames=list(entry.get("opendv_frames", [])))
        return meta
