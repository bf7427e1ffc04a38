"""Scene timelines from the nuScenes devkit: every camera frame (key frames and sweeps), calibration, ego poses."""
from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.data.errors import CorruptFileError, DatasetError

# Canonical rig order (docs/METHOD.md section 4): a ring from front-left round to back-left.
CAMERAS = ("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT")
FRONT = "CAM_FRONT"
# The tables NuScenes.__init__ loads (nuscenes/nuscenes.py); each must be <root>/<version>/<name>.json.
TABLES = ("category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log",
          "scene", "sample", "sample_data", "sample_annotation", "map")
# The mini download's split names: a user of v1.0-mini means these when asking for train / val.
MINI_SPLITS = {"train": "mini_train", "val": "mini_val"}


def resolve_cameras(views: str | Sequence[str] | None) -> tuple[str, ...]:
    """None / "all" -> the six cameras; "front" -> CAM_FRONT; a name or names -> those, in canonical order."""
    if views is None or views == "all":
        return CAMERAS
    if views == "front":
        return (FRONT,)
    names = [views] if isinstance(views, str) else list(views)
    unknown = [n for n in names if n not in CAMERAS]
    if unknown or not names:
        raise ValueError(f"unknown nuScenes views {unknown or names}; use None, 'front' or names from {CAMERAS}")
    return tuple(c for c in CAMERAS if c in names)


def quaternion_matrix(rotation: Sequence[float]) -> np.ndarray:
    """Unit quaternion (w, x, y, z), the nuScenes order -> rotation matrix (3, 3)."""
    w, x, y, z = np.asarray(rotation, dtype=np.float64) / np.linalg.norm(rotation)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def quaternion_yaw(rotation: Sequence[float]) -> float:
    """Heading (rad, about z, counter-clockwise from world x) of a (w, x, y, z) rotation."""
    r = quaternion_matrix(rotation)
    return float(np.arctan2(r[1, 0], r[0, 0]))


def pose_matrix(translation: Sequence[float], rotation: Sequence[float]) -> np.ndarray:
    """calibrated_sensor / ego_pose record fields -> 4x4 transform (sensor-to-ego or ego-to-world)."""
    m = np.eye(4)
    m[:3, :3] = quaternion_matrix(rotation)
    m[:3, 3] = np.asarray(translation, dtype=np.float64)
    return m


def split_scene_names(version: str, split: str) -> set[str]:
    """Scene names of an official split (nuscenes.utils.splits); train / val mean mini_train / mini_val on v1.0-mini."""
    from nuscenes.utils.splits import create_splits_scenes

    splits = create_splits_scenes(verbose=False)
    if version.endswith("mini"):
        split = MINI_SPLITS.get(split, split)
    if split not in splits:
        raise ValueError(f"unknown nuScenes split {split!r}; choose from {sorted(splits)}")
    return set(splits[split])


def prepare_command(root: Path, version: str) -> str:
    """The `worldmodel-prepare` command line that reads `root` as nuScenes `version`, quoted to paste as it is."""
    return (f"worldmodel-prepare dataset=nuscenes {shlex.quote(f'root={root}')} "
            f"{shlex.quote(f'+options.version={version}')}")


def _version_error(root: Path, version: str) -> DatasetError:
    other = "v1.0-mini" if version != "v1.0-mini" else "v1.0-trainval"
    found = sorted(p.name for p in root.glob("v1.0-*") if p.is_dir()) if root.is_dir() else []
    if found:
        fix = (f"this root has {found}: read it as that version, e.g. `{prepare_command(root, found[0])}` "
               f"(in a reader config: version: {found[0]})")
    else:
        fix = (f"this root has no v1.0-* folder; point root at the folder holding samples/, sweeps/ and v1.0-*/, "
               f"or for the {'mini' if other == 'v1.0-mini' else 'full'} download run "
               f"`{prepare_command(root, other)}` (in a reader config: version: {other})")
    return DatasetError(f"{root / version} not found: expected {root}/{version}/*.json from the nuScenes download "
                        f"(the metadata tables, next to samples/ and sweeps/); {fix}")


def load_nuscenes(root: Path, version: str) -> Any:
    """The devkit's NuScenes over root, with its assertions and raw exceptions turned into DatasetErrors."""
    table_root = root / version
    if not table_root.is_dir():
        raise _version_error(root, version)
    missing = [f"{name}.json" for name in TABLES if not (table_root / f"{name}.json").is_file()]
    if missing:
        raise DatasetError(f"{table_root} lacks {missing}: an incomplete nuScenes {version} metadata download")
    from nuscenes.nuscenes import NuScenes

    try:
        return NuScenes(version=version, dataroot=str(root), verbose=False)
    except json.JSONDecodeError as err:
        raise _find_corrupt_table(table_root) from err
    except AssertionError as err:
        # e.g. "map mask <root>/maps/x.png does not exist": the devkit's message names the file.
        raise DatasetError(f"nuscenes-devkit refused {table_root}: {err}") from err
    except (KeyError, IndexError) as err:
        raise DatasetError(f"{table_root}: the tables do not agree (missing record {err}); "
                           "re-extract the nuScenes metadata download") from err


def _find_corrupt_table(table_root: Path) -> DatasetError:
    """The devkit does not say which table failed to parse: find it (only on this error path)."""
    for name in TABLES:
        path = table_root / f"{name}.json"
        try:
            json.loads(path.read_text())
        except json.JSONDecodeError as err:
            return CorruptFileError(path, f"not valid JSON ({err})")
    return DatasetError(f"{table_root}: a table is not valid JSON")


@dataclass(frozen=True)
class CameraTrack:
    """One camera's frames of a scene in time order, and its calibration."""

    channel: str
    timestamps_us: np.ndarray  # (n,) int64, the sample_data timestamps
    files: list[str]  # (n,) relative to the dataset root, e.g. sweeps/CAM_FRONT/...jpg
    sample_tokens: list[str]  # (n,) the sample each frame belongs to
    ego_poses: np.ndarray  # (n, 3) world x, y, yaw of the ego at each frame
    intrinsics: np.ndarray  # (3, 3) pixels of the recorded image
    image_size: tuple[int, int]  # (h, w) of the recorded image
    camera_to_ego: np.ndarray  # (4, 4)


@dataclass(frozen=True)
class SceneTimeline:
    """The camera tracks of one scene; `missing` names requested cameras with no frame in it."""

    name: str
    token: str
    first_sample_token: str
    tracks: dict[str, CameraTrack]
    missing: tuple[str, ...]


def _scene_samples(nusc: Any, scene: dict) -> list[dict]:
    samples, token = [], scene["first_sample_token"]
    while token:
        sample = nusc.get("sample", token)
        if sample["scene_token"] != scene["token"]:
            break
        samples.append(sample)
        token = sample["next"]
    return samples


def _camera_track(nusc: Any, channel: str, first_token: str, sample_tokens: set[str]) -> CameraTrack:
    """Walk the sample_data chain of one camera both ways from a key frame, staying inside the scene."""
    def inside(token: str) -> dict | None:
        if not token:
            return None
        record = nusc.get("sample_data", token)
        return record if record["sample_token"] in sample_tokens else None

    first = nusc.get("sample_data", first_token)
    while (earlier := inside(first["prev"])) is not None:  # sweeps before the scene's first key frame
        first = earlier
    records, record = [], first
    while record is not None:
        records.append(record)
        record = inside(record["next"])
    records.sort(key=lambda r: r["timestamp"])
    # A repeated timestamp would stall the resampler: keep the first frame of each time.
    times = np.array([r["timestamp"] for r in records], dtype=np.int64)
    keep = np.concatenate([[True], np.diff(times) > 0])
    records = [r for r, k in zip(records, keep) if k]
    poses = []
    for r in records:
        ego = nusc.get("ego_pose", r["ego_pose_token"])
        poses.append((ego["translation"][0], ego["translation"][1], quaternion_yaw(ego["rotation"])))
    calib = nusc.get("calibrated_sensor", first["calibrated_sensor_token"])
    return CameraTrack(
        channel=channel,
        timestamps_us=times[keep],
        files=[r["filename"] for r in records],
        sample_tokens=[r["sample_token"] for r in records],
        ego_poses=np.asarray(poses, dtype=np.float64).reshape(-1, 3),
        intrinsics=np.asarray(calib["camera_intrinsic"], dtype=np.float64).reshape(3, 3),
        image_size=(int(first["height"]), int(first["width"])),
        camera_to_ego=pose_matrix(calib["translation"], calib["rotation"]),
    )


def scene_timeline(nusc: Any, scene: dict, channels: Sequence[str]) -> SceneTimeline:
    """Tracks of `channels` in one scene record; a KeyError means the tables reference a missing record."""
    samples = _scene_samples(nusc, scene)
    tokens = {s["token"] for s in samples}
    tracks, missing = {}, []
    for channel in channels:
        first = next((s["data"][channel] for s in samples if channel in s["data"]), None)
        if first is None:
            missing.append(channel)
            continue
        tracks[channel] = _camera_track(nusc, channel, first, tokens)
    return SceneTimeline(name=scene["name"], token=scene["token"], first_sample_token=scene["first_sample_token"],
                         tracks=tracks, missing=tuple(missing))
