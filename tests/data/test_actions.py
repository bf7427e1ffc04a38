"""The Vista action interface: command rule, derivation from ego states, packing."""
import numpy as np
import pytest
import torch

from worldmodel.data.actions import (ACTION_DIMS, ACTION_FIELDS, DEFAULT_ACTION_TIMES, NUM_ACTION_SCALARS, Command,
                                     CommandThresholds, actions_from_ego_states, derive_command, empty_actions,
                                     pack_actions)
from worldmodel.data.synthetic.cameras import CAMERAS

TIMES = np.asarray(DEFAULT_ACTION_TIMES)


def arc_states(speed: float, yaw_rate: float, yaw0: float = 0.3, origin=(5.0, -2.0), duration: float = 3.0,
               hz: float = 100.0):
    """Exact states of constant speed and yaw rate starting at `origin` with heading `yaw0`."""
    t = np.arange(0.0, duration + 1e-9, 1.0 / hz)
    yaw = yaw0 + yaw_rate * t
    if yaw_rate == 0:
        x = origin[0] + speed * t * np.cos(yaw0)
        y = origin[1] + speed * t * np.sin(yaw0)
    else:
        r = speed / yaw_rate
        x = origin[0] + r * (np.sin(yaw) - np.sin(yaw0))
        y = origin[1] - r * (np.cos(yaw) - np.cos(yaw0))
    return t, np.stack([x, y], axis=1), yaw, np.full_like(t, speed)


def test_constants():
    assert ACTION_FIELDS == ("command", "trajectory", "speed", "angle", "goal")
    assert [ACTION_DIMS[f] for f in ACTION_FIELDS] == [1, 8, 4, 4, 2]
    assert NUM_ACTION_SCALARS == 19
    assert DEFAULT_ACTION_TIMES == (0.5, 1.0, 1.5, 2.0)
    assert [c.name for c in Command] == ["STRAIGHT", "LEFT", "RIGHT", "LANE_CHANGE_LEFT", "LANE_CHANGE_RIGHT",
                                         "STOP", "U_TURN", "OTHER"]
    assert list(Command) == list(range(8))


def test_empty_actions_all_invalid_and_pack_to_zeros():
    actions = empty_actions()
    assert not any(actions["valid"].values())
    values, valid = pack_actions(actions)
    assert values.shape == (1, 19) and values.dtype == torch.float32
    assert valid.shape == (1, 5) and valid.dtype == torch.bool
    assert not valid.any() and torch.all(values == 0)


def _clip_actions(k: float) -> dict:
    return {"command": np.int64(2), "trajectory": (np.arange(8, dtype=np.float32) + 10 * k).reshape(4, 2),
            "speed": np.arange(4, dtype=np.float32) + 100 * k, "angle": np.arange(4, dtype=np.float32) - 50 * k,
            "goal": np.array([0.25, 0.75], np.float32) * k,
            "valid": {"command": True, "trajectory": True, "speed": True, "angle": k != 2, "goal": True}}


def test_pack_actions_batch_order_and_invalid_zeroed():
    batch = torch.utils.data.default_collate([_clip_actions(1), _clip_actions(2)])
    values, valid = pack_actions(batch)
    assert values.shape == (2, 19) and valid.shape == (2, 5)
    expected = [np.concatenate([[2.0], np.arange(8) + 10 * k, np.arange(4) + 100 * k,
                                (np.arange(4) - 50 * k) * (k != 2), np.array([0.25, 0.75]) * k]) for k in (1, 2)]
    np.testing.assert_allclose(values.numpy(), np.stack(expected), rtol=1e-6)
    assert valid.tolist() == [[True] * 5, [True, True, True, False, True]]


def test_pack_actions_single_clip_matches_batch_of_one():
    single = pack_actions(_clip_actions(1))
    batched = pack_actions(torch.utils.data.default_collate([_clip_actions(1)]))
    assert single[0].shape == (1, 19)
    assert torch.equal(single[0], batched[0]) and torch.equal(single[1], batched[1])


def _arc_trajectory(speed: float, yaw_rate: float) -> np.ndarray:
    t = TIMES
    if yaw_rate == 0:
        return np.stack([speed * t, 0 * t], axis=1)
    r = speed / yaw_rate
    return np.stack([r * np.sin(yaw_rate * t), r * (1 - np.cos(yaw_rate * t))], axis=1)


@pytest.mark.parametrize("trajectory, speed, expected", [
    (_arc_trajectory(10, 0.0), np.full(4, 10.0), Command.STRAIGHT),
    (_arc_trajectory(8, 0.4), np.full(4, 8.0), Command.LEFT),
    (_arc_trajectory(8, -0.4), np.full(4, 8.0), Command.RIGHT),
    (_arc_trajectory(3, 1.6), np.full(4, 3.0), Command.U_TURN),
    (_arc_trajectory(2, 0.0), np.array([1.5, 1.0, 0.5, 0.1]), Command.STOP),
    (np.zeros((4, 2)), np.zeros(4), Command.STOP),
    # An S-shaped move of a lane width that ends parallel to the start.
    (np.array([[5.0, 0.4], [10.0, 1.6], [15.0, 2.8], [20.0, 3.2]]), np.full(4, 10.0), Command.LANE_CHANGE_LEFT),
    (np.array([[5.0, -0.4], [10.0, -1.6], [15.0, -2.8], [20.0, -3.2]]), np.full(4, 10.0), Command.LANE_CHANGE_RIGHT),
    (-_arc_trajectory(3, 0.0), np.full(4, 3.0), Command.OTHER),  # reversing
])
def test_derive_command(trajectory, speed, expected):
    assert derive_command(trajectory, speed) == expected


def test_derive_command_gentle_curve_is_straight_and_thresholds_matter():
    gentle = _arc_trajectory(15, 15 / 600.0)  # a 600 m radius curve
    assert derive_command(gentle, np.full(4, 15.0)) == Command.STRAIGHT
    assert derive_command(gentle, np.full(4, 15.0), CommandThresholds(turn_heading_rad=0.01)) == Command.LEFT


def test_derive_command_estimates_final_speed_without_speeds():
    # Uniform braking from 4 m/s to 0 over 2 s: waypoints alone (with the start speed) say STOP.
    t = TIMES
    braking = np.stack([4 * t - t ** 2, 0 * t], axis=1)
    assert derive_command(braking, None, start_speed=4.0) == Command.STOP
    assert derive_command(_arc_trajectory(10, 0.0), None, start_speed=10.0) == Command.STRAIGHT


@pytest.mark.parametrize("yaw_rate", [0.0, 0.3, -0.45])
def test_trajectory_of_constant_speed_and_yaw_rate_is_the_analytic_arc(yaw_rate):
    t, pos, yaw, speed = arc_states(9.0, yaw_rate)
    steering = np.full_like(t, 0.7 * np.sign(yaw_rate))
    actions = actions_from_ego_states(t, pos, yaw, speed, steering, origin_time=0.6)
    np.testing.assert_allclose(actions["trajectory"], _arc_trajectory(9.0, yaw_rate), atol=2e-3)
    np.testing.assert_allclose(actions["speed"], 9.0, atol=1e-6)
    np.testing.assert_allclose(actions["angle"], 0.7 * np.sign(yaw_rate), atol=1e-6)
    assert all(actions["valid"][f] for f in ("command", "trajectory", "speed", "angle"))
    assert not actions["valid"]["goal"]  # no camera given
    expected = {0.0: Command.STRAIGHT, 0.3: Command.LEFT, -0.45: Command.RIGHT}[yaw_rate]
    assert actions["command"] == expected


def test_yaw_wraparound_and_world_rotation():
    # Heading close to +-pi: the recorded yaw jumps from +pi to -pi; the trajectory must not.
    t, pos, yaw, speed = arc_states(10.0, 0.2, yaw0=np.pi - 0.1)
    wrapped = (yaw + np.pi) % (2 * np.pi) - np.pi
    actions = actions_from_ego_states(t, pos, wrapped, speed, None, origin_time=0.0)
    np.testing.assert_allclose(actions["trajectory"], _arc_trajectory(10.0, 0.2), atol=2e-3)


def test_missing_fields_are_invalid_never_invented():
    t, pos, yaw, speed = arc_states(10.0, 0.0, duration=2.5)
    late = actions_from_ego_states(t, pos, yaw, speed, None, origin_time=1.0)  # needs data to 3.0 s
    assert not any(late["valid"].values())
    assert np.all(late["trajectory"] == 0)
    before = actions_from_ego_states(t, pos, yaw, speed, None, origin_time=-0.5)
    assert not any(before["valid"].values())
    no_speed = actions_from_ego_states(t, pos, yaw, None, None, origin_time=0.0)
    assert no_speed["valid"]["trajectory"] and not no_speed["valid"]["speed"] and not no_speed["valid"]["angle"]
    assert np.all(no_speed["speed"] == 0)


def test_goal_projects_into_front_camera_and_is_invalid_behind_it():
    cam = CAMERAS["CAM_FRONT"]
    size = (144, 256)
    kwargs = dict(intrinsics=cam.intrinsics(size), camera_to_ego=cam.camera_to_ego(), image_size=size)
    t, pos, yaw, speed = arc_states(10.0, 0.0, yaw0=0.0, origin=(0.0, 0.0))
    ahead = actions_from_ego_states(t, pos, yaw, speed, None, origin_time=0.0, **kwargs)
    assert ahead["valid"]["goal"]
    # 20 m ahead on the ground, camera 1.55 m high: below the horizon, on the centre column.
    k = cam.intrinsics(size)
    expected_v = (k[1, 1] * 1.55 / (20.0 - cam.position[0]) + k[1, 2]) / size[0]
    np.testing.assert_allclose(ahead["goal"], [0.5, expected_v], atol=1e-4)
    # Reversing: the last waypoint is behind the camera.
    behind = actions_from_ego_states(t, -pos, yaw, speed, None, origin_time=0.0, **kwargs)
    assert behind["valid"]["trajectory"] and not behind["valid"]["goal"]
    assert np.all(behind["goal"] == 0)
    # A sharp turn puts the goal beside the car: in front of the camera plane but off-image.
    t, pos, yaw, speed = arc_states(6.0, 1.2, yaw0=0.0, origin=(0.0, 0.0))
    side = actions_from_ego_states(t, pos, yaw, speed, None, origin_time=0.0, **kwargs)
    assert not side["valid"]["goal"]
