"""How far a rollout video drives and turns: the ego motion seen in its front camera next to the commanded one.

PSNR cannot tell a still picture from a moving one (holding the last frame still scores well), so every rollout
with a calibrated front camera also reports the distance and the heading change that the evaluator's ego-motion
estimator (`worldmodel.eval.ego_motion`, bird's-eye alignment of the road) sees in the generated video, in the
ground-truth video when there is one (the same estimator, so its bias cancels in the comparison), and along the
ego track that the actions were measured from.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from worldmodel.eval.action_following import integrate
from worldmodel.eval.ego_motion import estimate_ego_motion

FRONT = "CAM_FRONT"


@dataclass(frozen=True)
class FrontCamera:
    """Where the front camera sits among a job's cameras and how it maps pixels to the road."""

    index: int  # position of CAM_FRONT in the job's camera list
    intrinsics: np.ndarray  # (3, 3) in pixels of the rollout's frames
    camera_to_ego: np.ndarray | None  # (4, 4) OpenCV camera axes -> ego frame; None: a level camera
    pixel_offset: float  # 0.5 for the procedural renderer (pixel j centred at j + 0.5), 0 for real cameras


def front_camera(cameras: Sequence[str], intrinsics: Any, extrinsics: Any, pixel_offset: float) -> FrontCamera | None:
    """The job's front camera from per-camera calibration arrays (V, 3, 3) / (V, 4, 4), or None without one."""
    if FRONT not in cameras or intrinsics is None:
        return None
    v = list(cameras).index(FRONT)
    return FrontCamera(v, np.asarray(intrinsics, np.float64)[v],
                       None if extrinsics is None else np.asarray(extrinsics, np.float64)[v], pixel_offset)


def path_motion(poses: np.ndarray) -> tuple[float, float]:
    """Ego poses (T, 3) x, y, yaw -> (metres from the first position to the last, heading change in degrees).

    The straight-line distance rather than the path length: the estimate's frame-to-frame jitter on a
    blurred or tiled picture adds up along a path but cancels between its ends.
    """
    poses = np.asarray(poses, np.float64)
    return float(np.linalg.norm(poses[-1, :2] - poses[0, :2])), float(np.degrees(poses[-1, 2] - poses[0, 2]))


def seen_motion(frames: np.ndarray, camera: FrontCamera, fps: float) -> tuple[float, float]:
    """uint8 front-camera frames (T, H, W, 3) -> (metres driven, degrees turned) as the estimator sees them.

    NaN, NaN when no interval of the video could be aligned (a picture with no road texture to track).
    """
    motion = estimate_ego_motion(frames, camera.intrinsics, fps, camera_to_ego=camera.camera_to_ego,
                                 pixel_offset=camera.pixel_offset)
    poses = integrate(motion)
    if not np.isfinite(poses).all():
        return float("nan"), float("nan")
    return path_motion(poses)


def motion_metrics(generated: np.ndarray, truth: np.ndarray | None, camera: FrontCamera, fps: float,
                   commanded_poses: np.ndarray | None) -> dict[str, float | None]:
    """Flat metrics: distance_m / turn_deg of the generated video, the ground truth and the commanded track.

    None where the estimator could not align any interval (JSON has no NaN).

    generated, truth: uint8 (T, H, W, 3) front frames of the whole video (references included);
    commanded_poses: the ego track's poses (T, 3) at those frames, or None when the job has no ego states.
    """
    measured = {"generated": seen_motion(generated, camera, fps)}
    if truth is not None:
        measured["ground_truth"] = seen_motion(truth, camera, fps)
    if commanded_poses is not None:
        measured["commanded"] = path_motion(commanded_poses)
    out: dict[str, float | None] = {}
    for name, (distance, turn) in measured.items():
        out[f"distance_m_{name}"] = round(distance, 2) if np.isfinite(distance) else None
        out[f"turn_deg_{name}"] = round(turn, 1) if np.isfinite(turn) else None
    return out


def motion_line(metrics: Mapping[str, Any]) -> str | None:
    """'drove 0.4 m turning 0.1 deg (ground truth 32.6 m, 50.6 deg; commanded ...)' or None without the metrics."""
    if "distance_m_generated" not in metrics:
        return None

    def number(value: float | None) -> str:
        return "?" if value is None else f"{value:.1f}"

    line = f"drove {number(metrics['distance_m_generated'])} m turning {number(metrics['turn_deg_generated'])} deg"
    others = [f"{label} {number(metrics[f'distance_m_{key}'])} m, {number(metrics[f'turn_deg_{key}'])} deg"
              for key, label in (("ground_truth", "ground truth"), ("commanded", "commanded"))
              if f"distance_m_{key}" in metrics]
    return line + (f" ({'; '.join(others)})" if others else "")
