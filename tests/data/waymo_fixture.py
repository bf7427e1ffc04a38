"""Small Waymo segments in the real formats: v1 TFRecord files of Frame protos and v2 parquet components.

Each image is one solid colour that encodes its camera and frame: red = 20 + 50 * (index of
the camera in the canonical order), green = 5 * frame number (mod 250), blue = 100. The ego
drives at constant speed, straight or with a constant yaw rate, so every action is known.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from worldmodel.data.waymo import protos
from worldmodel.data.waymo.cameras import CAMERA_IDS, CAMERAS
from worldmodel.data.waymo.tfrecord import write_records

IMAGE_SIZES = {"FRONT": (64, 96), "FRONT_LEFT": (64, 96), "FRONT_RIGHT": (64, 96),
               "SIDE_LEFT": (48, 96), "SIDE_RIGHT": (48, 96)}  # (H, W), sides shorter as in Waymo
CAMERA_YAWS = {"SIDE_LEFT": np.pi / 2, "FRONT_LEFT": np.pi / 4, "FRONT": 0.0, "FRONT_RIGHT": -np.pi / 4,
               "SIDE_RIGHT": -np.pi / 2}
CAMERA_POSITION = (1.5, 0.0, 2.0)
FOCAL = 80.0
START_US = 1_557_000_000_000_000


def colour(camera: str, frame: int) -> tuple[int, int, int]:
    """The colour that encodes (camera, frame) in the fabricated images."""
    return 20 + 50 * CAMERAS.index(camera), (5 * frame) % 250, 100


def decode_colour(pixel: np.ndarray) -> tuple[int, int]:
    """(camera index, frame number mod 50) from a pixel of a fabricated image."""
    return int(round((float(pixel[0]) - 20) / 50)), int(round(float(pixel[1]) / 5))


def jpeg(camera: str, frame: int) -> bytes:
    h, w = IMAGE_SIZES[camera]
    buffer = io.BytesIO()
    Image.new("RGB", (w, h), colour(camera, frame)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@dataclass
class FakeSegment:
    """A fabricated segment: frames at `hz`, ego at constant `speed` and `yaw_rate` from `yaw0`."""

    name: str = "1000_000_000_020_000"
    num_frames: int = 40
    hz: float = 10.0
    speed: float = 8.0
    yaw_rate: float = 0.0
    yaw0: float = 0.6
    origin: tuple[float, float] = (100.0, -50.0)
    jitter_us: int = 0  # +- alternate timing error of the recording
    missing_camera: str | None = None  # this camera has no images
    corrupt_image: tuple[int, str] | None = None  # (frame, camera) whose JPEG is cut in half

    def timestamps_us(self) -> np.ndarray:
        k = np.arange(self.num_frames)
        return START_US + np.round(k * 1e6 / self.hz).astype(np.int64) + self.jitter_us * (k % 2)

    def state(self, t: float) -> tuple[float, float, float]:
        """World x, y, yaw at `t` seconds after the first frame."""
        v, w, yaw0 = self.speed, self.yaw_rate, self.yaw0
        yaw = yaw0 + w * t
        if abs(w) < 1e-12:
            return self.origin[0] + v * t * np.cos(yaw0), self.origin[1] + v * t * np.sin(yaw0), yaw
        return (self.origin[0] + v / w * (np.sin(yaw) - np.sin(yaw0)),
                self.origin[1] - v / w * (np.cos(yaw) - np.cos(yaw0)), yaw)

    def pose(self, k: int) -> list[float]:
        """Row-major world_from_vehicle of frame k."""
        x, y, yaw = self.state((self.timestamps_us()[k] - START_US) * 1e-6)
        c, s = np.cos(yaw), np.sin(yaw)
        return [c, -s, 0.0, x, s, c, 0.0, y, 0.0, 0.0, 1.0, 0.3, 0.0, 0.0, 0.0, 1.0]

    def cameras(self) -> list[str]:
        return [c for c in CAMERAS if c != self.missing_camera]

    def image(self, k: int, camera: str) -> bytes:
        data = jpeg(camera, k)
        return data[: len(data) // 2] if self.corrupt_image == (k, camera) else data


def intrinsic(camera: str) -> list[float]:
    """[f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3] of a fabricated camera."""
    h, w = IMAGE_SIZES[camera]
    return [FOCAL, FOCAL, w / 2, h / 2, 0.01, -0.002, 0.0, 0.0, 0.0]


def extrinsic(camera: str) -> list[float]:
    """Row-major camera-to-vehicle (Waymo camera axes) of a fabricated camera: a yaw about z."""
    c, s = np.cos(CAMERA_YAWS[camera]), np.sin(CAMERA_YAWS[camera])
    x, y, z = CAMERA_POSITION
    return [c, -s, 0.0, x, s, c, 0.0, y, 0.0, 0.0, 1.0, z, 0.0, 0.0, 0.0, 1.0]


# ----------------------------------------------------------------------------
# v1
# ----------------------------------------------------------------------------

def make_frame(segment: FakeSegment, k: int, module: ModuleType = protos):
    """Frame k of a segment built with `module`'s classes (ours, or the official `dataset_pb2`)."""
    frame = module.Frame(timestamp_micros=int(segment.timestamps_us()[k]))
    frame.context.name = segment.name
    for camera in CAMERAS:
        h, w = IMAGE_SIZES[camera]
        calib = frame.context.camera_calibrations.add(name=CAMERA_IDS[camera], intrinsic=intrinsic(camera),
                                                      width=w, height=h, rolling_shutter_direction=2)
        calib.extrinsic.transform.extend(extrinsic(camera))
    frame.pose.transform.extend(segment.pose(k))
    for camera in segment.cameras():
        image = frame.images.add(name=CAMERA_IDS[camera], image=segment.image(k, camera),
                                 pose_timestamp=segment.timestamps_us()[k] * 1e-6, shutter=0.004)
        image.pose.transform.extend(segment.pose(k))
        image.velocity.v_x = float(segment.speed)
    return frame


def v1_path(root: Path, split: str, segment: FakeSegment) -> Path:
    return Path(root) / split / f"segment-{segment.name}_with_camera_labels.tfrecord"


def write_v1_segment(root: Path, split: str, segment: FakeSegment,
                     module: ModuleType = protos) -> tuple[Path, list[int]]:
    """Write the segment as `<root>/<split>/segment-<name>_with_camera_labels.tfrecord`; (path, record offsets)."""
    path = v1_path(root, split, segment)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [make_frame(segment, k, module).SerializeToString() for k in range(segment.num_frames)]
    return path, write_records(path, frames)


# ----------------------------------------------------------------------------
# v2
# ----------------------------------------------------------------------------

TRANSFORM = pa.list_(pa.float64(), 16)


def write_v2_segment(root: Path, split: str, segment: FakeSegment, row_group_size: int = 7) -> Path:
    """Write camera_image, vehicle_pose and camera_calibration components; returns the camera_image file.

    Camera rows are written camera by camera (not frame by frame) in small row groups, so a
    reader must use the keys and row ids rather than the row order.
    """
    split_dir = Path(root) / split
    stamps = segment.timestamps_us()
    image_rows = [(camera, k) for camera in reversed(segment.cameras()) for k in range(segment.num_frames)]
    images = pa.table({
        "key.segment_context_name": pa.array([segment.name] * len(image_rows), pa.string()),
        "key.frame_timestamp_micros": pa.array([int(stamps[k]) for _, k in image_rows], pa.int64()),
        "key.camera_name": pa.array([CAMERA_IDS[c] for c, _ in image_rows], pa.int8()),
        "[CameraImageComponent].image": pa.array([segment.image(k, c) for c, k in image_rows], pa.binary()),
        "[CameraImageComponent].pose.transform": pa.array([segment.pose(k) for _, k in image_rows], TRANSFORM),
        "[CameraImageComponent].pose_timestamp": pa.array([stamps[k] * 1e-6 for _, k in image_rows], pa.float64()),
    })
    poses = pa.table({
        "key.segment_context_name": pa.array([segment.name] * segment.num_frames, pa.string()),
        "key.frame_timestamp_micros": pa.array(stamps, pa.int64()),
        "[VehiclePoseComponent].world_from_vehicle.transform": pa.array(
            [segment.pose(k) for k in range(segment.num_frames)], TRANSFORM),
    })
    calib = {"key.segment_context_name": pa.array([segment.name] * len(CAMERAS), pa.string()),
             "key.camera_name": pa.array([CAMERA_IDS[c] for c in CAMERAS], pa.int8())}
    for i, key in enumerate(("f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3")):
        calib[f"[CameraCalibrationComponent].intrinsic.{key}"] = pa.array([intrinsic(c)[i] for c in CAMERAS],
                                                                          pa.float64())
    calib["[CameraCalibrationComponent].extrinsic.transform"] = pa.array([extrinsic(c) for c in CAMERAS], TRANSFORM)
    calib["[CameraCalibrationComponent].width"] = pa.array([IMAGE_SIZES[c][1] for c in CAMERAS], pa.int32())
    calib["[CameraCalibrationComponent].height"] = pa.array([IMAGE_SIZES[c][0] for c in CAMERAS], pa.int32())
    calib["[CameraCalibrationComponent].rolling_shutter_direction"] = pa.array([2] * len(CAMERAS), pa.int8())
    for component, table in (("camera_image", images), ("vehicle_pose", poses),
                             ("camera_calibration", pa.table(calib))):
        (split_dir / component).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, split_dir / component / f"{segment.name}.parquet", row_group_size=row_group_size)
    return split_dir / "camera_image" / f"{segment.name}.parquet"
