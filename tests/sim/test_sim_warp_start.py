"""WorldModelEnv(warp_start=...): every step starts from the last frame moved along the commanded path."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from worldmodel.eval.psnr import psnr
from worldmodel.rollout.warp_start import WarpStartError


def _first_step(env, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    _, info = env.reset(seed=seed, options={"scenario": "straight_cruise"})
    _, _, _, _, step = env.step(np.array([10.0, 0.0], np.float32))
    return info["frames"][-1], step["frames"]


def test_warp_start_turns_the_untrained_model_into_the_moved_last_frame(make_env):
    """A random network from pure noise draws nothing like the road; from tau 0.01 on the warped last frame
    (one sampler step) its frames stay the road, moved: close to the reference, and not equal to it."""
    reference, plain = _first_step(make_env())
    _, warped = _first_step(make_env(warp_start=0.01))
    assert make_env(warp_start=0.01).warp_start == 0.01
    plain_db = psnr(plain, np.broadcast_to(reference, plain.shape)).mean()
    warped_db = psnr(warped, np.broadcast_to(reference, warped.shape))
    warped_db = warped_db[:, 0]  # (frames,) of the one camera
    assert plain_db < 14 and warped_db.mean() > plain_db + 5
    # 10 m/s for 0.5 s: each frame has moved further from the reference than the one before.
    assert np.all(np.diff(warped_db) < 0)


def test_a_scenario_without_calibration_is_named(make_env, tmp_path):
    for i in range(2):
        Image.fromarray(np.full((32, 64, 3), 90 + i, np.uint8)).save(tmp_path / f"frame{i}.png")
    scenario = tmp_path / "photos.yaml"
    scenario.write_text("source: {files: [frame0.png, frame1.png]}\nactions: [{at: 0.0, do: cruise, speed: 8}]\n")
    env = make_env(warp_start=0.4)
    with pytest.raises(WarpStartError, match="photos.*warp_start=null"):
        env.reset(seed=0, options={"scenario": str(scenario)})


def test_a_time_outside_the_schedule_is_refused(make_env):
    with pytest.raises(WarpStartError, match=r"\(0, 1\]"):
        make_env(warp_start=1.5)
