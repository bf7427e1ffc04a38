"""Waymo v2 segments: parquet components `<root>/<split>/<component>/<segment>.parquet`, read with pyarrow.

Three components are used, with the official v2 column names:
`camera_image` (key.segment_context_name, key.frame_timestamp_micros, key.camera_name,
[CameraImageComponent].image), `vehicle_pose` ([VehiclePoseComponent].world_from_vehicle.transform,
16 values row-major) and `camera_calibration` ([CameraCalibrationComponent].intrinsic.f_u ... k3,
.extrinsic.transform, .width, .height). A frame's timestamp is its key.frame_timestamp_micros,
the same value as the v1 Frame.timestamp_micros.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from worldmodel.data.errors import CorruptFileError, SkipLog
from worldmodel.data.waymo.cameras import CAMERA_IDS, CAMERA_NAMES
from worldmodel.data.waymo.index import SegmentScan

KEY_SEGMENT = "key.segment_context_name"
KEY_TIMESTAMP = "key.frame_timestamp_micros"
KEY_CAMERA = "key.camera_name"
IMAGE = "[CameraImageComponent].image"
POSE = "[VehiclePoseComponent].world_from_vehicle.transform"
CALIBRATION = "[CameraCalibrationComponent]"
INTRINSIC_FIELDS = ("f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3")
INTRINSICS = tuple(f"{CALIBRATION}.intrinsic.{k}" for k in INTRINSIC_FIELDS)
EXTRINSIC = f"{CALIBRATION}.extrinsic.transform"
WIDTH, HEIGHT = f"{CALIBRATION}.width", f"{CALIBRATION}.height"

MISSING_COMPONENT = "missing v2 component"
CORRUPT_PARQUET = "corrupt parquet file"
MISSING_CAMERA = "missing camera"


def find_v2_segments(split_dir: Path) -> list[Path]:
    """The camera_image files of one split (one per segment), sorted by name."""
    return sorted(p for p in (split_dir / "camera_image").glob("*.parquet") if p.is_file())


def _read_table(path: Path, columns: Sequence[str]) -> pa.Table:
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        return pq.read_table(path, columns=list(columns))
    except (pa.ArrowException, OSError) as err:
        raise CorruptFileError(path, f"cannot read parquet columns {list(columns)} ({err})") from err


def _calibrations(path: Path) -> dict[str, dict]:
    table = _read_table(path, [KEY_CAMERA, *INTRINSICS, EXTRINSIC, WIDTH, HEIGHT]).to_pydict()
    out = {}
    for row, camera_id in enumerate(table[KEY_CAMERA]):
        if camera_id in CAMERA_NAMES:
            out[CAMERA_NAMES[camera_id]] = {"intrinsic": [float(table[c][row]) for c in INTRINSICS],
                                            "extrinsic": [float(x) for x in table[EXTRINSIC][row]],
                                            "width": int(table[WIDTH][row]), "height": int(table[HEIGHT][row])}
    return out


def scan_v2_segment(image_path: Path, root: Path, cameras: Sequence[str], skips: SkipLog) -> SegmentScan | None:
    """Frames (vehicle_pose timestamps), image row ids per camera and calibrations; None (skip logged) when unusable."""
    split_dir = image_path.parent.parent
    pose_path = split_dir / "vehicle_pose" / image_path.name
    calib_path = split_dir / "camera_calibration" / image_path.name
    try:
        keys = _read_table(image_path, [KEY_SEGMENT, KEY_TIMESTAMP, KEY_CAMERA]).to_pydict()
        poses = _read_table(pose_path, [KEY_TIMESTAMP, POSE]).to_pydict()
        calibrations = _calibrations(calib_path)
    except FileNotFoundError as err:
        skips.skip(MISSING_COMPONENT, f"{err.args[0]} (needed by {image_path})")
        return None
    except CorruptFileError as err:
        skips.skip(CORRUPT_PARQUET, err.path, err)
        return None
    rows = {(int(ts), int(cam)): row for row, (ts, cam) in enumerate(zip(keys[KEY_TIMESTAMP], keys[KEY_CAMERA]))}
    missing = [c for c in cameras if c not in calibrations]
    if missing:
        skips.skip(MISSING_CAMERA, f"{calib_path}: no calibration of {'/'.join(missing)}")
        return None
    stamps = np.asarray(poses[KEY_TIMESTAMP], dtype=np.int64)
    order = np.argsort(stamps, kind="stable")
    order = order[np.concatenate([[True], np.diff(stamps[order]) > 0])] if len(order) else order
    locators = []
    for k in order:
        ts = int(stamps[k])
        frame_rows = [rows.get((ts, CAMERA_IDS[c])) for c in cameras]
        if None in frame_rows:
            absent = [c for c, r in zip(cameras, frame_rows) if r is None]
            skips.skip(MISSING_CAMERA, f"{image_path}: no {'/'.join(absent)} image at t={ts} us")
            return None
        locators.append(frame_rows)
    name = str(keys[KEY_SEGMENT][0]) if keys[KEY_SEGMENT] else image_path.stem
    pose_values = [poses[POSE][k] for k in order]
    if any(len(p) != 16 for p in pose_values):
        skips.skip(CORRUPT_PARQUET, pose_path, CorruptFileError(pose_path, "a pose has not 16 values"))
        return None
    return SegmentScan(name=name, file=image_path.relative_to(root).as_posix(), timestamps_us=stamps[order],
                       poses=np.asarray(pose_values, dtype=np.float64).reshape(-1, 16), locators=locators,
                       calibrations=calibrations)


def read_v2_images(path: Path, rows: Sequence[Sequence[int]]) -> list[list[bytes]]:
    """Encoded images [frame][camera] at the given row ids, reading only the row groups that hold them."""
    try:
        parquet = pq.ParquetFile(path)
        bounds = np.cumsum([0] + [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)])
        wanted = sorted({int(r) for frame in rows for r in frame})
        if wanted and wanted[-1] >= bounds[-1]:
            raise CorruptFileError(path, f"row {wanted[-1]} beyond the file's {bounds[-1]} rows "
                                         "(changed since indexing?)")
        groups = sorted({int(np.searchsorted(bounds, r, side="right") - 1) for r in wanted})
        images: dict[int, bytes] = {}
        for g in groups:
            column = parquet.read_row_group(g, columns=[IMAGE]).column(IMAGE)
            for r in wanted:
                if bounds[g] <= r < bounds[g + 1]:
                    images[r] = column[r - int(bounds[g])].as_py()
    except (pa.ArrowException, OSError) as err:
        raise CorruptFileError(path, f"cannot read images ({err})") from err
    return [[images[int(r)] for r in frame] for frame in rows]
