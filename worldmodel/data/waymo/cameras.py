"""Waymo's camera rig and frames: camera names, views, calibration -> pinhole K and optical-to-ego extrinsics.

Waymo's camera frame has x forward (along the optical axis), y left and z up, and its
calibration `extrinsic` maps that frame to the vehicle frame. Our intrinsics (and every
other reader's extrinsics) use the OpenCV optical frame: x right, y down, z forward. A point
p_opt in the optical frame is p_waymo = OPTICAL_TO_WAYMO_CAMERA @ p_opt, so the returned
camera-to-ego matrix is `extrinsic @ OPTICAL_TO_WAYMO_CAMERA`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from worldmodel.data.waymo.protos import CAMERA_NAME_VALUES

# The canonical view order of the clips: left to right across the five-camera rig.
CAMERAS = ("SIDE_LEFT", "FRONT_LEFT", "FRONT", "FRONT_RIGHT", "SIDE_RIGHT")
CAMERA_IDS = {name: CAMERA_NAME_VALUES[name] for name in CAMERAS}
CAMERA_NAMES = {value: name for name, value in CAMERA_IDS.items()}
GOAL_CAMERA = "FRONT"

# Columns: optical x (right) -> Waymo -y, optical y (down) -> Waymo -z, optical z (forward) -> Waymo x.
OPTICAL_TO_WAYMO_CAMERA = np.array([[0.0, 0.0, 1.0, 0.0],
                                    [-1.0, 0.0, 0.0, 0.0],
                                    [0.0, -1.0, 0.0, 0.0],
                                    [0.0, 0.0, 0.0, 1.0]])


def resolve_views(views: str | Sequence[str] | None) -> tuple[str, ...]:
    """None -> the five cameras in canonical order; "front" -> FRONT; a name or a list of names as given."""
    if views is None:
        return CAMERAS
    if isinstance(views, str):
        views = [GOAL_CAMERA] if views.lower() == "front" else [views]
    names = tuple(str(v).upper() for v in views)
    unknown = [n for n in names if n not in CAMERA_IDS]
    if unknown or not names:
        raise ValueError(f"unknown Waymo camera(s) {unknown or list(views)}; known: {list(CAMERAS)} or 'front'")
    return names


def camera_matrix(intrinsic: Sequence[float]) -> np.ndarray:
    """Waymo intrinsic [f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3] -> pinhole K (3, 3) (distortion ignored)."""
    f_u, f_v, c_u, c_v = (float(x) for x in intrinsic[:4])
    return np.array([[f_u, 0.0, c_u], [0.0, f_v, c_v], [0.0, 0.0, 1.0]])


def optical_to_ego(extrinsic: Sequence[float]) -> np.ndarray:
    """Waymo camera-to-vehicle transform (16 values, row-major) -> OpenCV optical camera-to-ego (4, 4)."""
    camera_to_vehicle = np.asarray(extrinsic, dtype=np.float64).reshape(4, 4)
    return camera_to_vehicle @ OPTICAL_TO_WAYMO_CAMERA


def planar_poses(world_from_vehicle: np.ndarray) -> np.ndarray:
    """(n, 16) or (n, 4, 4) row-major vehicle-to-world transforms -> (n, 3) x, y, yaw in the world frame."""
    m = np.asarray(world_from_vehicle, dtype=np.float64).reshape(-1, 4, 4)
    return np.stack([m[:, 0, 3], m[:, 1, 3], np.arctan2(m[:, 1, 0], m[:, 0, 0])], axis=-1)


def speeds_from_positions(timestamps: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Ground speed (n,) m/s from positions (n, 2) at times (n,) s: second-order finite differences."""
    t = np.asarray(timestamps, dtype=np.float64)
    if t.size < 2:
        return np.zeros(t.size)
    velocity = np.gradient(np.asarray(xy, dtype=np.float64), t, axis=0)
    return np.hypot(velocity[:, 0], velocity[:, 1])
