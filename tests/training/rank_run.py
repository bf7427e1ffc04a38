"""`python -m tests.training.rank_run RUN_DIR OVERRIDE...`: one tiny MR training run whose mask kind follows the
batch row (`MaskKindByRow`), saving each rank's weights. Run as a real process so that Lightning's launcher can
start the other ranks by re-running this command, as it does for a user's `worldmodel-train`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.training.train import train

RUN = [*TINY_RUN, "trainer.max_steps=3", "trainer.precision=32-true", "ema.enabled=true", "reference_frames.choices=[1]",
       "reference_frames.weights=[1]", "callbacks.sample_videos.every_n_train_steps=0", "trainer.val_check_interval=3",
       "callbacks.export.every_n_train_steps=0", "optim.lr=1e-3", "optim.warmup_steps=1",
       "objective=rectified_flow_mr", "objective._target_=tests.training.rank_kinds.MaskKindByRow"]

REPO = Path(__file__).resolve().parents[2]
# A rank that skips a collective the other waits in hangs until gloo's 30-minute timeout: stop long before.
TIMEOUT_S = 240


def run_ranks(run_dir: Path, overrides: list[str]) -> str:
    """Run this script with `overrides` in a real process (Lightning starts the other ranks); the joint log of its
    ranks once all finished. A run that does not finish within TIMEOUT_S fails the test."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "tests.training.rank_run", str(run_dir), *overrides],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the run did not finish in {TIMEOUT_S} s (ranks out of step?):\n{hung.stderr}")
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout + done.stderr


if __name__ == "__main__":
    run_dir, overrides = sys.argv[1], sys.argv[2:]
    train(compose_config("train", [*RUN, f"run_dir={run_dir}", *overrides,
                                   "+callbacks.rank_weights._target_=tests.training.rank_kinds.SaveRankWeights",
                                   f"+callbacks.rank_weights.dirpath={run_dir}/rank_weights"]))
