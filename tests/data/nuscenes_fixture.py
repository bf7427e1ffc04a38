"""Writes a tiny nuScenes tree in the real format (v1.0 tables, camera JPEGs, CAN bus files) with known ground truth.

Every scene drives at a constant speed and yaw rate, so poses, speeds and waypoints are known in closed
form. Each camera fires at 12 Hz with the small offset of the real rig (the lidar sweeps past the
cameras in turn); every 6th frame is a key frame (2 Hz samples), the rest are sweeps. Each JPEG is one
flat colour that encodes its camera index and frame number (`frame_colour` / `read_colour`), so a test
can tell which file landed in which slot of a clip.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pyquaternion import Quaternion

CAMERAS = ("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT")
CAMERA_OFFSETS_US = {"CAM_FRONT_LEFT": -8000, "CAM_FRONT": 0, "CAM_FRONT_RIGHT": 8000, "CAM_BACK_RIGHT": 17000,
                     "CAM_BACK": 25000, "CAM_BACK_LEFT": -17000}
CAMERA_YAWS_DEG = {"CAM_FRONT_LEFT": 55.0, "CAM_FRONT": 0.0, "CAM_FRONT_RIGHT": -55.0, "CAM_BACK_RIGHT": -110.0,
                   "CAM_BACK": 180.0, "CAM_BACK_LEFT": 110.0}
PERIOD_US = 1e6 / 12.0
KEY_EVERY = 6
IMAGE_SIZE = (36, 64)  # (h, w): 16:9 like the real 900 x 1600 images
FOCAL, CX, CY = 40.0, 32.0, 18.0
START_XY = (600.0, 1600.0)
FIRST_START_US = 1_532_402_927_000_000
# Camera axes (x right, y down, z forward) -> ego axes (x forward, y left, z up), for a camera facing ego +x.
CAMERA_TO_EGO_FRONT = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass
class FakeScene:
    """One fabricated scene: constant speed and yaw rate, optionally CAN bus recordings and dropped frames."""

    name: str
    seconds: float = 4.0
    speed: float = 10.0  # m/s
    yaw_rate: float = 0.0  # rad/s, positive to the left
    heading: float = 0.5  # rad, world yaw at the start
    cameras: tuple[str, ...] = CAMERAS
    can: bool = False  # write vehicle_monitor (and pose when can_pose) messages
    can_pose: bool = True
    steering_deg: float = 0.0  # vehicle_monitor.steering, constant
    monitor_speed_kmh: float | None = None  # vehicle_monitor.vehicle_speed; default speed * 3.6
    dropped: dict[str, range] = field(default_factory=dict)  # camera -> frame numbers never recorded


def token(*parts: object) -> str:
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def scene_start_us(index: int) -> int:
    return FIRST_START_US + index * 100_000_000


def num_frames(scene: FakeScene) -> int:
    return int(scene.seconds * 12) + 1


def frame_time_us(start_us: int, camera: str, k: int) -> int:
    return start_us + int(round(k * PERIOD_US)) + CAMERA_OFFSETS_US[camera]


def ego_state(scene: FakeScene, t: float) -> tuple[float, float, float]:
    """World x, y, yaw at t seconds after the scene start (exact arc or line)."""
    v, w, h = scene.speed, scene.yaw_rate, scene.heading
    if abs(w) < 1e-12:
        return START_XY[0] + v * t * np.cos(h), START_XY[1] + v * t * np.sin(h), h
    r = v / w
    return (START_XY[0] + r * (np.sin(h + w * t) - np.sin(h)), START_XY[1] + r * (np.cos(h) - np.cos(h + w * t)),
            h + w * t)


def frame_colour(camera_index: int, k: int) -> tuple[int, int, int]:
    assert k < 128, "the colour code holds frame numbers below 128"
    return 30 + 40 * camera_index, 16 * (k % 16) + 8, 32 * (k // 16) + 16


def read_colour(image: np.ndarray) -> tuple[int, int]:
    """Flat image (h, w, 3) -> (camera index, frame number) written by frame_colour."""
    r, g, b = image.reshape(-1, 3).mean(axis=0)
    return int(round((r - 30) / 40)), int(round((g - 8) / 16)) + 16 * int(round((b - 16) / 32))


def yaw_quaternion(yaw: float) -> list[float]:
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


def camera_to_ego(camera: str) -> np.ndarray:
    """4x4 camera-to-ego transform of the fabricated rig."""
    yaw = np.deg2rad(CAMERA_YAWS_DEG[camera])
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
    m = np.eye(4)
    m[:3, :3] = rz @ CAMERA_TO_EGO_FRONT
    m[:3, 3] = (1.7, 0.0, 1.5) if camera == "CAM_FRONT" else (1.0 + 0.8 * np.cos(yaw), 0.8 * np.sin(yaw), 1.5)
    return m


def intrinsics() -> np.ndarray:
    return np.array([[FOCAL, 0.0, CX], [0.0, FOCAL, CY], [0.0, 0.0, 1.0]])


def _write_can(can_dir: Path, scene: FakeScene, start_us: int) -> None:
    can_dir.mkdir(parents=True, exist_ok=True)
    kmh = scene.speed * 3.6 if scene.monitor_speed_kmh is None else scene.monitor_speed_kmh
    monitor = []
    for utime in range(start_us - 500_000, start_us + int(scene.seconds * 1e6) + 500_001, 500_000):  # 2 Hz
        monitor.append({"utime": utime, "available_distance": 120, "battery_level": 80, "brake": 0, "brake_switch": 1,
                        "gear_position": 7, "left_signal": 0, "rear_left_rpm": 300.0, "rear_right_rpm": 300.0,
                        "right_signal": 0, "steering": scene.steering_deg, "steering_speed": 0.0, "throttle": 120,
                        "vehicle_speed": kmh, "yaw_rate": float(np.rad2deg(scene.yaw_rate))})
    (can_dir / f"{scene.name}_vehicle_monitor.json").write_text(json.dumps(monitor))
    if scene.can_pose:
        pose = []
        for utime in range(start_us - 100_000, start_us + int(scene.seconds * 1e6) + 100_001, 20_000):  # 50 Hz
            x, y, yaw = ego_state(scene, (utime - start_us) / 1e6)
            pose.append({"utime": utime, "accel": [0.0, 0.0, 9.8], "orientation": yaw_quaternion(yaw),
                         "pos": [x, y, 0.0], "rotation_rate": [0.0, 0.0, scene.yaw_rate],
                         "vel": [scene.speed, 0.0, 0.0]})
        (can_dir / f"{scene.name}_pose.json").write_text(json.dumps(pose))


def write_nuscenes(root: Path, scenes: list[FakeScene], version: str = "v1.0-trainval") -> dict[str, int]:
    """Write the tables, JPEGs and CAN files; returns each scene's start time (us, CAM_FRONT frame 0)."""
    tables: dict[str, list[dict]] = {name: [] for name in (
        "category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose", "log", "scene",
        "sample", "sample_data", "sample_annotation", "map")}
    tables["category"].append({"token": token("category"), "name": "vehicle.car", "description": "cars"})
    tables["visibility"].append({"token": "4", "level": "v80-100", "description": "visibility of whole object"})
    for camera in CAMERAS:
        tables["sensor"].append({"token": token("sensor", camera), "channel": camera, "modality": "camera"})
    starts = {}
    for index, scene in enumerate(scenes):
        start_us = starts[scene.name] = scene_start_us(index)
        logfile = f"n015-2018-07-24-11-{index:02d}-45+0800"
        log_token, scene_token = token("log", scene.name), token("scene", scene.name)
        tables["log"].append({"token": log_token, "logfile": logfile, "vehicle": "n015", "date_captured": "2018-07-24",
                              "location": "singapore-onenorth"})
        n = num_frames(scene)
        sample_tokens = [token("sample", scene.name, s) for s in range((n - 1) // KEY_EVERY + 1)]
        for s, sample in enumerate(sample_tokens):
            tables["sample"].append({
                "token": sample, "timestamp": frame_time_us(start_us, "CAM_FRONT", s * KEY_EVERY),
                "prev": sample_tokens[s - 1] if s else "",
                "next": sample_tokens[s + 1] if s + 1 < len(sample_tokens) else "",
                "scene_token": scene_token})
        tables["scene"].append({"token": scene_token, "log_token": log_token, "nbr_samples": len(sample_tokens),
                                "first_sample_token": sample_tokens[0], "last_sample_token": sample_tokens[-1],
                                "name": scene.name, "description": "fabricated"})
        for camera in scene.cameras:
            cam_index = CAMERAS.index(camera)
            ext = camera_to_ego(camera)
            calib = token("calib", scene.name, camera)
            tables["calibrated_sensor"].append({
                "token": calib, "sensor_token": token("sensor", camera), "translation": ext[:3, 3].tolist(),
                "rotation": list(Quaternion(matrix=ext[:3, :3]).elements), "camera_intrinsic": intrinsics().tolist()})
            frames = [k for k in range(n) if k not in scene.dropped.get(camera, range(0))]
            records = []
            for k in frames:
                ts = frame_time_us(start_us, camera, k)
                key = k % KEY_EVERY == 0
                filename = f"{'samples' if key else 'sweeps'}/{camera}/{logfile}__{camera}__{ts}.jpg"
                path = root / filename
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((*IMAGE_SIZE, 3), frame_colour(cam_index, k), np.uint8)).save(path, quality=95)
                x, y, yaw = ego_state(scene, (ts - start_us) / 1e6)
                pose = token("ego", scene.name, camera, k)
                tables["ego_pose"].append({"token": pose, "timestamp": ts, "rotation": yaw_quaternion(yaw),
                                           "translation": [x, y, 0.0]})
                records.append({"token": token("sd", scene.name, camera, k),
                                "sample_token": sample_tokens[k // KEY_EVERY],
                                "ego_pose_token": pose, "calibrated_sensor_token": calib, "timestamp": ts,
                                "fileformat": "jpg", "is_key_frame": key, "height": IMAGE_SIZE[0],
                                "width": IMAGE_SIZE[1], "filename": filename})
            for i, record in enumerate(records):
                record["prev"] = records[i - 1]["token"] if i else ""
                record["next"] = records[i + 1]["token"] if i + 1 < len(records) else ""
            tables["sample_data"].extend(records)
        if scene.can:
            _write_can(root / "can_bus", scene, start_us)
    tables["map"].append({"token": token("map"), "log_tokens": [t["token"] for t in tables["log"]],
                          "category": "semantic_prior", "filename": "maps/fabricated.png"})
    (root / "maps").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "maps" / "fabricated.png")
    (root / version).mkdir(parents=True, exist_ok=True)
    for name, records in tables.items():
        (root / version / f"{name}.json").write_text(json.dumps(records, indent=0))
    return starts
