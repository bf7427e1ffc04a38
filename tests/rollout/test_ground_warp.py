"""Ground-plane warp: identity at rest, exact rotations and road-plane translations, and real procedural frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from worldmodel.data.synthetic import CAMERAS, SyntheticDriving
from worldmodel.eval.ego_motion import level_camera
from worldmodel.data.actions import relative_pose
from worldmodel.rollout.ground_warp import _intrinsics_inverse, pose_matrix, rigid_inverse, source_pixels, warp_frames

SIZE = (36, 64)
K = np.array([[40.0, 0.0, 32.0], [0.0, 40.0, 18.0], [0.0, 0.0, 1.0]])


def _grid(size: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float64)
    return np.stack([cols, rows], axis=-1)


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_no_motion_is_the_identity(offset: float) -> None:
    camera = CAMERAS["CAM_FRONT_LEFT"]  # yawed and off-centre on the ego
    source = source_pixels(np.zeros((1, 3)), camera.intrinsics(SIZE), camera.camera_to_ego(), SIZE, offset)
    np.testing.assert_allclose(source[0], _grid(SIZE), atol=1e-6)
    frames = torch.rand(2, 3, *SIZE)
    warped = warp_frames(frames, np.stack([source, source]))
    assert warped.shape == (2, 1, 3, *SIZE)
    torch.testing.assert_close(warped[:, 0], frames, atol=1e-5, rtol=0)


def test_turning_in_place_is_the_rotation_homography() -> None:
    """A camera on the turning axis sees a pure rotation: every pixel maps by K R K^-1, whatever its depth."""
    yaw = 0.1
    source = source_pixels(np.array([[0.0, 0.0, yaw]]), K, level_camera(1.5), SIZE, 0.0)[0]
    c, s = np.cos(yaw), np.sin(yaw)
    rotation = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])  # ego yaw left, in OpenCV camera axes
    pixels = np.concatenate([_grid(SIZE), np.ones((*SIZE, 1))], axis=-1) @ (K @ rotation @ np.linalg.inv(K)).T
    expected = pixels[..., :2] / pixels[..., 2:]
    inside = ((expected[..., 0] >= -0.5) & (expected[..., 0] <= SIZE[1] - 0.5)
              & (expected[..., 1] >= -0.5) & (expected[..., 1] <= SIZE[0] - 0.5))
    np.testing.assert_allclose(source[inside], expected[inside], atol=1e-6)
    # The left edge of the new view was outside the old frame: those pixels keep the old frame's colour.
    assert (~inside[:, :3]).all()
    np.testing.assert_allclose(source[~inside], _grid(SIZE)[~inside], atol=1e-9)
    assert source[18, 32, 0] == pytest.approx(32.0 - 40.0 * np.tan(yaw))  # the view's centre was left of it


def test_driving_forward_moves_road_points_down_the_image() -> None:
    height, forward = 1.5, 3.0
    source = source_pixels(np.array([[forward, 0.0, 0.0]]), K, level_camera(height), SIZE, 0.0)[0]
    for row in (24, 30, 35):  # below the horizon (row 18): road
        distance = 40.0 * height / (row - 18.0)
        assert source[row, 32, 1] == pytest.approx(18.0 + 40.0 * height / (distance + forward))
        assert source[row, 32, 0] == pytest.approx(32.0)
    # Above the horizon the point lies on the far cylinder (30 m ahead), now 33 m from where the camera was.
    assert source[5, 32, 1] == pytest.approx(18.0 - (18.0 - 5.0) * 30.0 / 33.0)


def test_warping_a_procedural_frame_along_the_true_motion_beats_copying_it() -> None:
    clip = SyntheticDriving(num_clips=2, num_frames=4, fps=5.0, size=(64, 128), seed=7, split="test")[0]
    frames, meta = clip["frames"][:, 0], clip["meta"]
    poses = np.asarray(meta["ego_poses"])
    motion = relative_pose(poses[0], poses[1:])
    assert np.linalg.norm(motion[-1, :2]) > 3.0, "the test wants a moving ego"
    source = source_pixels(motion, np.asarray(meta["intrinsics"])[0], np.asarray(meta["extrinsics"])[0], (64, 128),
                           0.5)
    first = torch.as_tensor(frames[0]).permute(2, 0, 1)[None].float()
    warped = warp_frames(first, source[None])[0].permute(0, 2, 3, 1).numpy()  # (3, H, W, 3)
    truth = frames[1:].astype(np.float64)
    road = slice(40, 64)  # the lower rows: the road plane the warp models
    warp_error = ((warped[:, road] - truth[:, road]) ** 2).mean(axis=(1, 2, 3))
    copy_error = ((frames[0, road].astype(np.float64) - truth[:, road]) ** 2).mean(axis=(1, 2, 3))
    assert (warp_error < 0.7 * copy_error).all(), (warp_error, copy_error)


def test_written_out_inverses_match_numpy() -> None:
    rng = np.random.default_rng(0)
    camera = CAMERAS["CAM_BACK_LEFT"].camera_to_ego()  # a rotated and shifted rig camera
    np.testing.assert_allclose(rigid_inverse(camera), np.linalg.inv(camera), atol=1e-12)
    poses = pose_matrix(rng.normal(size=(5, 3)))
    np.testing.assert_allclose(rigid_inverse(poses), np.linalg.inv(poses), atol=1e-12)
    k = np.array([[110.0, 0.7, 63.5], [0.0, 95.0, 31.5], [0.0, 0.0, 1.0]])  # with skew
    np.testing.assert_allclose(_intrinsics_inverse(k), np.linalg.inv(k), atol=1e-12)
    odd = k.copy()
    odd[2, 0] = 0.1  # not a pinhole matrix: the general inverse
    np.testing.assert_allclose(_intrinsics_inverse(odd), np.linalg.inv(odd), atol=1e-12)
