"""Policies (built-in lane keeping, user callables) and episode recording."""
from __future__ import annotations

import json

import numpy as np
import pytest

from worldmodel.rollout.jobs import ModelRig
from worldmodel.sim.policies import LaneKeeping, PolicyError, load_policy
from worldmodel.sim.procedural import ProceduralEnv
from worldmodel.sim.recording import RecordEpisodes
from worldmodel.sim.run import run_episode
from worldmodel.viz import read_video


def constant_policy(obs):
    """A user policy: hold 7 m/s, wheel straight."""
    return np.array([7.0, 0.0], np.float32)


def test_load_policy_builtin_user_and_errors():
    assert isinstance(load_policy("lane_keeping"), LaneKeeping)
    assert load_policy("tests.sim.test_policies_and_recording:constant_policy") is constant_policy
    with pytest.raises(PolicyError, match="cannot import module 'no_such_pkg"):
        load_policy("no_such_pkg.drive:policy")
    with pytest.raises(PolicyError, match="has no attribute 'nope'"):
        load_policy("json:nope")
    with pytest.raises(PolicyError, match="not a callable"):
        load_policy("math:pi")
    with pytest.raises(PolicyError, match="module:callable"):
        load_policy("drive_fast")


@pytest.mark.parametrize("mode", ["control", "trajectory"])
def test_lane_keeping_follows_a_curving_road_in_the_procedural_simulator(mode):
    env = ProceduralEnv(ModelRig(8, 10.0, (32, 64), "front"), horizon_s=12.0, action_mode=mode)
    summary = run_episode(env, LaneKeeping(action_mode=mode), seed=0, scenario="left_turn")
    assert summary["steps"] == 24 and summary["max_lateral_offset_m"] < 0.6
    headings = np.array([s.yaw for s in env.episode_states])
    assert headings[-1] - headings[0] > 1.0  # it took the junction's ~90 degree bend
    assert summary["return"] == pytest.approx(summary["progress_m"], abs=0.5)


def test_recorded_episodes_are_readable_videos(make_env, tmp_path):
    env = RecordEpisodes(make_env(horizon_s=1.0), tmp_path / "episodes")
    run_episode(env, constant_policy, seed=1, scenario=2)
    run_episode(env, constant_policy, seed=2, scenario=2)
    env.close()
    assert [p.name for p in env.recorded] == ["episode000", "episode001"]
    video = read_video(tmp_path / "episodes" / "episode000" / "generated.mp4")
    assert video.shape == (11, 32, 64, 3)  # 1 reference frame + 2 steps x 5 frames
    assert read_video(tmp_path / "episodes" / "episode000" / "CAM_FRONT.mp4").shape[0] == 11
    log = json.loads((tmp_path / "episodes" / "episode000" / "episode.json").read_text())
    assert len(log["steps"]) == 2 and log["steps"][0]["action"] == [7.0, 0.0]
    assert len(log["ego_states"]) == 11 and log["seed"] == 1
