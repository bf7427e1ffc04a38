"""Pinhole cameras on the ego vehicle: the `front` rig and a nuScenes-like six-camera rig."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Intrinsics are defined at the nuScenes 16:9 aspect; any output size scales them like a resize.
NATIVE_ASPECT = 9.0 / 16.0
CAMERA_HEIGHT_M = 1.55


@dataclass(frozen=True)
class Camera:
    """A level pinhole camera with OpenCV axes (x right, y down, z forward), mounted at `position` in the ego frame."""

    name: str
    yaw_deg: float  # positive turns the optical axis to the left (ego frame z up)
    hfov_deg: float
    position: tuple[float, float, float]

    def intrinsics(self, size: tuple[int, int]) -> np.ndarray:
        """K (3, 3) float64 in pixels of an image of `size` (h, w)."""
        h, w = size
        tan_half = math.tan(math.radians(self.hfov_deg) / 2.0)
        fx = (w / 2.0) / tan_half
        fy = (h / 2.0) / (tan_half * NATIVE_ASPECT)
        return np.array([[fx, 0.0, w / 2.0], [0.0, fy, h / 2.0], [0.0, 0.0, 1.0]])

    def rotation(self) -> np.ndarray:
        """Camera-to-ego rotation (3, 3): columns are the camera x, y, z axes in the ego frame."""
        yaw = math.radians(self.yaw_deg)
        forward = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.array([0.0, 0.0, -1.0])
        return np.stack([right, down, forward], axis=1)

    def camera_to_ego(self) -> np.ndarray:
        """Extrinsic (4, 4) float64 mapping camera coordinates to the ego frame."""
        t = np.eye(4)
        t[:3, :3] = self.rotation()
        t[:3, 3] = self.position
        return t


def _cam(name: str, yaw: float, fov: float, x: float, y: float) -> Camera:
    return Camera(name, yaw, fov, (x, y, CAMERA_HEIGHT_M))


# nuScenes-like rig: neighbours overlap by 15-20 degrees, the back camera is wide.
CAMERAS: dict[str, Camera] = {c.name: c for c in (
    _cam("CAM_FRONT_LEFT", 55.0, 70.0, 1.5, 0.5),
    _cam("CAM_FRONT", 0.0, 70.0, 1.7, 0.0),
    _cam("CAM_FRONT_RIGHT", -55.0, 70.0, 1.5, -0.5),
    _cam("CAM_BACK_RIGHT", -110.0, 70.0, 1.0, -0.5),
    _cam("CAM_BACK", 180.0, 110.0, 0.0, 0.0),
    _cam("CAM_BACK_LEFT", 110.0, 70.0, 1.0, 0.5),
)}
RIGS: dict[str, tuple[str, ...]] = {
    "front": ("CAM_FRONT",),
    "rig6": ("CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT"),
}


def resolve_views(views: str | Sequence[str | Camera]) -> tuple[Camera, ...]:
    """'front', 'rig6', one camera name or a list of names / cameras -> cameras in that order."""
    if isinstance(views, str):
        names: Sequence[str | Camera] = RIGS.get(views, (views,))
    else:
        names = views
    cameras = []
    for item in names:
        if isinstance(item, Camera):
            cameras.append(item)
        elif item in CAMERAS:
            cameras.append(CAMERAS[item])
        else:
            raise ValueError(f"unknown camera {item!r}; known: {sorted(CAMERAS)} or rigs {sorted(RIGS)}")
    if not cameras:
        raise ValueError("at least one camera is needed")
    return tuple(cameras)
