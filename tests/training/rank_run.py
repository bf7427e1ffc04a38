"""`python -m tests.training.rank_run RUN_DIR OVERRIDE...`: one tiny MR training run whose mask kind follows the
batch row (`MaskKindByRow`), saving each rank's weights. Run as a real process so that Lightning's launcher can
start the other ranks by re-running this command, as it does for a user's `worldmodel-train`."""
from __future__ import annotations

import sys

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.training.train import train

RUN = [*TINY_RUN, "trainer.max_steps=3", "trainer.precision=32-true", "ema.enabled=true", "reference_frames.choices=[1]",
       "reference_frames.weights=[1]", "callbacks.sample_videos.every_n_train_steps=0", "trainer.val_check_interval=3",
       "callbacks.export.every_n_train_steps=0", "optim.lr=1e-3", "optim.warmup_steps=1",
       "objective=rectified_flow_mr", "objective._target_=tests.training.rank_kinds.MaskKindByRow"]

if __name__ == "__main__":
    run_dir, overrides = sys.argv[1], sys.argv[2:]
    train(compose_config("train", [*RUN, f"run_dir={run_dir}", *overrides,
                                   "+callbacks.rank_weights._target_=tests.training.rank_kinds.SaveRankWeights",
                                   f"+callbacks.rank_weights.dirpath={run_dir}/rank_weights"]))
