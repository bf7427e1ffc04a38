"""Waymo v1 segments: one TFRecord file of `Frame` protos per segment, under `<root>/<split>/*.tfrecord`."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from worldmodel.data.errors import CorruptFileError, SkipLog
from worldmodel.data.waymo.cameras import CAMERA_NAMES
from worldmodel.data.waymo.index import SegmentScan
from worldmodel.data.waymo.protos import Frame
from worldmodel.data.waymo.tfrecord import iter_records, read_record

CORRUPT_RECORD = "corrupt TFRecord (frames before the damage kept)"
MISSING_CAMERA = "missing camera"


def find_v1_segments(split_dir: Path) -> list[Path]:
    """The segment files of one split, sorted by name."""
    return sorted(p for p in split_dir.glob("*.tfrecord") if p.is_file())


def _parse_frame(data: bytes, path: Path, offset: int) -> Frame:
    try:
        return Frame.FromString(data)
    except DecodeError as err:
        raise CorruptFileError(path, f"record is not a Waymo Frame ({err})", offset) from err


def _calibrations(frame: Frame) -> dict[str, dict]:
    out = {}
    for calib in frame.context.camera_calibrations:
        if calib.name in CAMERA_NAMES:
            out[CAMERA_NAMES[calib.name]] = {"intrinsic": list(calib.intrinsic),
                                             "extrinsic": list(calib.extrinsic.transform),
                                             "width": int(calib.width), "height": int(calib.height)}
    return out


def scan_v1_segment(path: Path, root: Path, cameras: Sequence[str], skips: SkipLog) -> SegmentScan | None:
    """Timestamps, poses, record offsets and calibrations of a segment; None (skip logged) when unusable.

    A damaged record ends the scan: with `skips.strict` its CorruptFileError (file and offset)
    is raised, otherwise the frames before it are kept and the file is counted.
    """
    stamps, poses, offsets = [], [], []
    calibrations: dict[str, dict] = {}
    name = path.stem
    try:
        for offset, data in iter_records(path):
            frame = _parse_frame(data, path, offset)
            if not offsets:
                name = frame.context.name or name
            calibrations.update(_calibrations(frame))
            present = {CAMERA_NAMES.get(image.name) for image in frame.images if image.image}
            missing = [c for c in cameras if c not in present]
            if missing:
                skips.skip(MISSING_CAMERA, f"{path}: no {'/'.join(missing)} image at t={frame.timestamp_micros} us")
                return None
            if len(frame.pose.transform) != 16:
                raise CorruptFileError(path, f"frame pose has {len(frame.pose.transform)} values, expected 16", offset)
            stamps.append(int(frame.timestamp_micros))
            poses.append(list(frame.pose.transform))
            offsets.append(int(offset))
    except CorruptFileError as err:
        skips.skip(CORRUPT_RECORD, path, err)
    missing = [c for c in cameras if c not in calibrations]
    if missing and offsets:
        skips.skip(MISSING_CAMERA, f"{path}: no calibration of {'/'.join(missing)}")
        return None
    order = np.argsort(np.asarray(stamps, dtype=np.int64), kind="stable")
    stamps_sorted = np.asarray(stamps, dtype=np.int64)[order]
    keep = np.concatenate([[True], np.diff(stamps_sorted) > 0]) if len(order) else np.zeros(0, bool)
    order = order[keep]
    return SegmentScan(name=name, file=path.relative_to(root).as_posix(),
                       timestamps_us=np.asarray(stamps, dtype=np.int64)[order],
                       poses=np.asarray(poses, dtype=np.float64).reshape(-1, 16)[order],
                       locators=[offsets[k] for k in order], calibrations=calibrations)


def read_v1_images(path: Path, offsets: Sequence[int], cameras: Sequence[str]) -> list[list[bytes]]:
    """Encoded images [frame][camera] of the records at `offsets`, each record read by seeking to it."""
    out = []
    with open(path, "rb") as handle:
        for offset in offsets:
            frame = _parse_frame(read_record(handle, offset, path), path, offset)
            images = {CAMERA_NAMES.get(image.name): image.image for image in frame.images}
            missing = [c for c in cameras if not images.get(c)]
            if missing:
                raise CorruptFileError(path, f"record has no {'/'.join(missing)} image (file changed since indexing?)",
                                       offset)
            out.append([images[c] for c in cameras])
    return out
