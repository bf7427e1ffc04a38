"""The motion a rollout reports: path golden values, the front camera's pick, and the estimate on rendered drives."""
from __future__ import annotations

import numpy as np
import pytest

from worldmodel.rollout.engine import ChunkSchedule
from worldmodel.rollout.jobs import ModelRig
from worldmodel.rollout.motion import front_camera, motion_line, motion_metrics, path_motion, seen_motion
from worldmodel.rollout.scenario import load_scenario, resolve_scenario
from worldmodel.rollout.sources import procedural_job

RIG = ModelRig(chunk_frames=8, fps=10.0, size=(64, 128), views="front")


def _drive(name: str, seconds: float):
    """A procedural scenario's rendered front video (T, H, W, 3), its front camera and commanded poses (T, 3)."""
    scenario = load_scenario(resolve_scenario(name))
    frames = int(round(seconds * RIG.fps))
    job = procedural_job(scenario, scenario.source, RIG, ChunkSchedule.for_horizon(8, 1, 3, frames), 1, frames)
    video = np.stack([f[job.front.index] for f in job.truth()])
    return video, job.front, job.ego.poses[:frames]


def test_path_motion_of_a_quarter_circle() -> None:
    angle = np.linspace(0.0, np.pi / 2, 901)
    poses = np.stack([10 * np.sin(angle), 10 * (1 - np.cos(angle)), angle], axis=1)  # left turn, radius 10 m
    length, turn = path_motion(poses)
    assert length == pytest.approx(10 * np.sqrt(2)) and turn == pytest.approx(90.0)  # the chord, not the arc
    assert path_motion(np.zeros((5, 3))) == (0.0, 0.0)


def test_front_camera_is_cam_front_or_none() -> None:
    intrinsics = np.stack([np.eye(3), 2 * np.eye(3)])
    extrinsics = np.stack([np.eye(4), 3 * np.eye(4)])
    camera = front_camera(["CAM_FRONT_LEFT", "CAM_FRONT"], intrinsics, extrinsics, 0.5)
    assert camera.index == 1 and camera.pixel_offset == 0.5
    assert np.array_equal(camera.intrinsics, 2 * np.eye(3)) and np.array_equal(camera.camera_to_ego, 3 * np.eye(4))
    assert front_camera(["CAM_BACK"], intrinsics[:1], extrinsics[:1], 0.0) is None
    assert front_camera(["CAM_FRONT"], None, None, 0.0) is None


def test_a_rendered_drive_moves_and_a_still_video_does_not() -> None:
    video, camera, poses = _drive("straight_cruise", 3.0)
    commanded, _ = path_motion(poses)
    seen, turn = seen_motion(video, camera, RIG.fps)
    assert commanded > 15.0
    # At 64x128 the bird's-eye estimator sees the road coarsely and underestimates (0.45x over these 3 s).
    assert 0.3 * commanded < seen < 1.2 * commanded and abs(turn) < 10.0
    still, still_turn = seen_motion(np.repeat(video[:1], len(video), axis=0), camera, RIG.fps)
    assert still < 0.5 and abs(still_turn) < 1.0


def test_a_rendered_left_turn_turns_left() -> None:
    video, camera, poses = _drive("left_turn", 6.0)
    _, commanded_turn = path_motion(poses)
    _, seen_turn = seen_motion(video, camera, RIG.fps)
    # The estimate turns the right way; at 64x128 it sees a quarter of the angle (13 of 54 degrees).
    assert commanded_turn > 30.0 and 5.0 < seen_turn < commanded_turn


def test_motion_metrics_and_their_line() -> None:
    video, camera, poses = _drive("straight_cruise", 2.0)
    still = np.repeat(video[:1], len(video), axis=0)
    metrics = motion_metrics(still, video, camera, RIG.fps, poses)
    assert set(metrics) == {f"{q}_{s}" for q in ("distance_m", "turn_deg") for s in ("generated", "ground_truth",
                                                                                     "commanded")}
    assert metrics["distance_m_generated"] < 0.5 < metrics["distance_m_ground_truth"] < metrics["distance_m_commanded"]
    line = motion_line(metrics)
    assert line.startswith(f"drove {metrics['distance_m_generated']:.1f} m") and "ground truth" in line
    assert "commanded" in line
    assert set(motion_metrics(still, None, camera, RIG.fps, None)) == {"distance_m_generated", "turn_deg_generated"}
    assert motion_line({"psnr_model": 20.0}) is None
    # No interval to align (one frame): no numbers, said as such, and JSON-safe (no NaN).
    single = video[:1]
    assert seen_motion(single, camera, RIG.fps) == pytest.approx((np.nan, np.nan), nan_ok=True)
    empty = motion_metrics(single, None, camera, RIG.fps, None)
    assert empty == {"distance_m_generated": None, "turn_deg_generated": None}
    assert motion_line(empty) == "drove ? m turning ? deg"
