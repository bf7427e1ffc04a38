"""Two DDP processes (gloo, CPU) with batch b train the same weights as one process with batch 2b."""
from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.training.train import train

# Every sample predicts from one reference frame, so each rank's loss is a plain mean over the same
# number of frames and the average of the ranks' gradients is the gradient of the doubled batch.
RUN = [*TINY_RUN, "trainer.max_steps=3", "trainer.precision=32-true", "ema.enabled=false", "reference_frames.choices=[1]",
       "reference_frames.weights=[1]", "callbacks.sample_videos.every_n_train_steps=0", "trainer.val_check_interval=3",
       "callbacks.export.every_n_train_steps=0", "optim.lr=1e-3", "optim.warmup_steps=1"]


def _weights(run_dir: Path, overrides: list[str]) -> dict[str, torch.Tensor]:
    train(compose_config("train", [*RUN, f"run_dir={run_dir}", *overrides]))
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 3
    return {k: v for k, v in state["state_dict"].items() if k.startswith("model.")}


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_two_ddp_ranks_equal_one_process_with_the_doubled_batch(tmp_path: Path) -> None:
    ddp = _weights(tmp_path / "ddp", ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                                      "trainer.strategy.start_method=spawn", "data.batch_size=2"])
    single = _weights(tmp_path / "single", ["trainer=cpu", "data.batch_size=4"])
    half = _weights(tmp_path / "half", ["trainer=cpu", "data.batch_size=2"])
    # fp32 sums in another order: differences of a few ulps, amplified a little by Adam's normalisation.
    assert _max_difference(ddp, single) < 1e-5
    # The tolerance is meaningful: one rank's half of the batch alone trains clearly other weights.
    assert _max_difference(half, single) > 1e-4
