"""WorldModelEnv: Gymnasium API, determinism, ego integration, Vista actions, action validation."""
from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import worldmodel.sim
from worldmodel.sim import ENV_ID


def test_registered_env_passes_check_env(sim_export):
    worldmodel.sim.register()  # idempotent
    env = gym.make(ENV_ID, checkpoint=str(sim_export), device="cpu", horizon_s=2.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    messages = [str(w.message) for w in caught if "gymnasium" in str(w.filename) or "WARN" in str(w.message)]
    # The one recommendation left: control actions are in m/s, not normalised to [-1, 1].
    assert all("symmetric and normalized" in m for m in messages), messages
    env.close()


def test_spaces_are_exact(make_env):
    env = make_env()
    space = env.observation_space
    assert space["frames"].dtype == np.uint8 and space["frames"].shape == (1, 32, 64, 3)
    for key in ("speed", "yaw_rate", "pose"):
        assert space[key].dtype == np.float32 and np.isfinite(space[key].low).all() and np.isfinite(space[key].high).all()
    assert env.action_space.shape == (2,) and env.action_space.dtype == np.float32
    assert make_env(action_mode="trajectory").action_space.shape == (4, 2)


def test_reset_with_seed_is_deterministic(make_env):
    env = make_env()
    runs = []
    for seed in (5, 5, 6):
        obs, info = env.reset(seed=seed)
        step_obs, reward, *_ = env.step(np.array([10.0, 0.1], np.float32))
        runs.append((obs, step_obs, reward))
    (obs_a, step_a, r_a), (obs_b, step_b, r_b), (_, step_c, _) = runs
    assert np.array_equal(obs_a["frames"], obs_b["frames"])
    assert np.array_equal(step_a["frames"], step_b["frames"]) and r_a == r_b
    np.testing.assert_array_equal(step_a["pose"], step_b["pose"])
    assert not np.array_equal(step_a["frames"], step_c["frames"])  # another seed, other noise


def test_step_advances_frames_and_ego_like_the_action(make_env):
    env = make_env()
    obs, info = env.reset(seed=0, options={"scenario": "straight_cruise"})
    assert info["frames"].shape == (1, 1, 32, 64, 3) and info["frame_count"] == 1
    np.testing.assert_allclose(obs["pose"], 0.0)
    assert obs["speed"][0] == pytest.approx(10.0)  # the scenario starts at 10 m/s

    obs, reward, terminated, truncated, info = env.step(np.array([10.0, 0.0], np.float32))
    assert info["frames"].shape == (5, 1, 32, 64, 3) and info["frame_count"] == 6
    assert info["time_s"] == pytest.approx(0.5)
    np.testing.assert_allclose(obs["pose"], [5.0, 0.0, 0.0], atol=1e-4)  # 0.5 s at 10 m/s straight ahead
    assert reward == pytest.approx(5.0, abs=1e-3)  # progress along the straight route
    assert np.array_equal(obs["frames"], info["frames"][-1])
    vista = info["vista_actions"]
    assert vista["command"] == "straight"
    np.testing.assert_allclose(vista["trajectory"][-1], [20.0, 0.0], atol=1e-2)  # the action held for 2 s
    np.testing.assert_allclose(vista["speed"], [10.0] * 4, atol=1e-3)

    obs, *_, info = env.step(np.array([10.0, 0.3], np.float32))  # steer left
    assert obs["pose"][1] > 0.05 and obs["pose"][2] > 0.02 and obs["yaw_rate"][0] > 0.1
    assert info["vista_actions"]["command"] == "left"
    assert all(a > 0 for a in info["vista_actions"]["angle"])

    obs, *_ = env.step(np.array([0.0, 0.0], np.float32))  # brake: at most 5 m/s^2
    assert 10.0 - 5.0 * 0.5 - 1e-3 <= obs["speed"][0] < 10.0


def test_trajectory_actions_are_tracked(make_env):
    env = make_env(action_mode="trajectory")
    obs, _ = env.reset(seed=0, options={"scenario": "straight_cruise"})
    waypoints = np.array([[5.0, 0.0], [10.0, 0.0], [15.0, 0.0], [20.0, 0.0]], np.float32)
    obs, *_ = env.step(waypoints)
    np.testing.assert_allclose(obs["pose"], [5.0, 0.0, 0.0], atol=1e-3)
    bend = np.array([[5.0, 0.5], [9.8, 2.0], [14.3, 4.5], [18.4, 7.8]], np.float32)
    obs, *_ = env.step(bend)
    assert obs["pose"][1] > 0.1 and obs["yaw_rate"][0] > 0.1


@pytest.mark.parametrize("action, match", [
    (np.array([np.nan, 0.0]), "target_speed is nan"),
    (np.array([10.0, np.inf]), "steering is inf"),
    (np.array([50.0, 0.0]), r"target_speed = 50 is outside its range \[0, 40\]"),
    (np.array([10.0, -1.5]), r"steering = -1.5 is outside its range \[-1, 1\]"),
    (np.array([10.0, 0.0, 0.0]), r"shape \(3,\), expected \(2,\)"),
    ("fast", "must be numeric"),
])
def test_invalid_actions_raise_clear_errors(make_env, action, match):
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_invalid_trajectory_action(make_env):
    env = make_env(action_mode="trajectory")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"waypoint\[2\].y is nan"):
        env.step(np.array([[5, 0], [10, 0], [15, np.nan], [20, 0]], np.float32))
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(4, 2\)"):
        env.step(np.array([10.0, 0.0]))


def test_horizon_truncates_and_render_gives_the_mosaic(make_env):
    env = make_env(horizon_s=1.0)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step([10.0, 0.0])
    assert not terminated and not truncated
    _, _, terminated, truncated, info = env.step([10.0, 0.0])
    assert truncated and not terminated and info["time_s"] == pytest.approx(1.0)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step([10.0, 0.0])
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[-1] == 3


def test_bad_configuration_and_options_fail_clearly(make_env):
    with pytest.raises(ValueError, match="allow 1 to 5"):
        make_env(chunk_s=0.8)
    env = make_env()
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"scenery": 1})
    with pytest.raises(RuntimeError, match="call reset"):
        make_env().step([10.0, 0.0])
