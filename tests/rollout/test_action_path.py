"""The ego path of a Vista action vector: through its waypoints, heading along the path, relative poses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from worldmodel.data.actions import pack_actions, relative_pose
from worldmodel.rollout.action_path import chunk_motion, path_poses


def test_straight_cruise_is_linear_and_goes_on_past_the_last_waypoint() -> None:
    waypoints = np.array([[5.0, 0.0], [10.0, 0.0], [15.0, 0.0], [20.0, 0.0]])
    poses = path_poses(waypoints, [0.0, 0.25, 1.0, 1.75, 2.5])
    np.testing.assert_allclose(poses, [[0, 0, 0], [2.5, 0, 0], [10, 0, 0], [17.5, 0, 0], [25, 0, 0]], atol=1e-9)


def test_arc_passes_its_waypoints_and_heads_along_the_circle() -> None:
    radius, speed = 20.0, 10.0  # a left turn at 0.5 rad/s
    times = np.array([0.5, 1.0, 1.5, 2.0])
    angle = speed * times / radius
    waypoints = np.stack([radius * np.sin(angle), radius * (1 - np.cos(angle))], axis=1)
    poses = path_poses(waypoints, times)
    np.testing.assert_allclose(poses[:, :2], waypoints, atol=1e-9)
    np.testing.assert_allclose(poses[:, 2], angle, atol=0.03)  # the circle's tangent, to a Hermite curve's accuracy
    between = path_poses(waypoints, [0.25, 0.75, 1.25])
    np.testing.assert_allclose(between[:, 2], speed * np.array([0.25, 0.75, 1.25]) / radius, atol=0.03)


def test_standstill_keeps_the_heading() -> None:
    np.testing.assert_allclose(path_poses(np.zeros((4, 2)), [0.0, 1.0, 3.0]), np.zeros((3, 3)))


def test_relative_pose_golden() -> None:
    origin = np.array([1.0, 1.0, np.pi / 2])  # facing +y
    np.testing.assert_allclose(relative_pose(origin, np.array([1.0, 3.0, np.pi / 2])), [2.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(relative_pose(origin, np.array([0.0, 1.0, np.pi])), [0.0, 1.0, np.pi / 2], atol=1e-12)


def _packed(trajectory: np.ndarray, valid: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    actions = {"command": np.int64(0), "trajectory": trajectory, "speed": np.zeros(4), "angle": np.zeros(4),
               "goal": np.zeros(2), "valid": {"command": True, "trajectory": valid, "speed": False,
                                               "angle": False, "goal": False}}
    return pack_actions(actions)


def test_chunk_motion_is_seen_from_the_last_reference() -> None:
    values, valid = _packed(np.array([[5.0, 0.0], [10.0, 0.0], [15.0, 0.0], [20.0, 0.0]]))
    motion = chunk_motion(values, valid, from_frame=2, to_frames=[3, 4], fps=10.0)  # 10 m/s, frames 0.1 s apart
    np.testing.assert_allclose(motion, [[[1.0, 0, 0], [2.0, 0, 0]]], atol=1e-9)


def test_chunk_motion_without_a_trajectory_is_named() -> None:
    values, valid = _packed(np.zeros((4, 2)), valid=False)
    with pytest.raises(ValueError, match=r"batch items \[0\] have no valid trajectory.*warp_start=null"):
        chunk_motion(values, valid, 0, [1], 10.0)
