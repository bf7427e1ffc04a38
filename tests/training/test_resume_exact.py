"""Stopping at step N and resuming from the .ckpt retraces the uninterrupted run bit for bit (CPU, fp32)."""
from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.training.train import train

# 8 clips in batches of 2: an epoch is 4 steps, so resuming at step 3 continues mid-epoch and then
# crosses into epoch 1. Validation runs at step 2 and 4 (EMA weights, own generator).
N, TOTAL = 3, 6
RUN = [*TINY_RUN, "trainer=cpu", "callbacks.checkpoint.every_n_train_steps=1", "callbacks.export.every_n_train_steps=0",
       "callbacks.sample_videos.every_n_train_steps=0", "optim.warmup_steps=4", "ema.decay=0.9",
       "objective=rectified_flow_mr"]


def _run(run_dir: Path, losses: Path, steps: int, *extra: str) -> None:
    cfg = compose_config("train", [*RUN, f"run_dir={run_dir}", f"trainer.max_steps={steps}",
                                   "+callbacks.record._target_=tests.training.recorder.LossRecorder",
                                   f"+callbacks.record.path={losses}", *extra])
    train(cfg)


def _state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_resumed_run_matches_the_uninterrupted_one_bit_for_bit(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _run(straight, tmp_path / "straight.txt", TOTAL)
    _run(resumed, tmp_path / "resumed.txt", N)
    assert _state(resumed)["global_step"] == N
    _run(resumed, tmp_path / "resumed.txt", TOTAL, "ckpt_path=last")

    expected = (tmp_path / "straight.txt").read_text().splitlines()
    assert len(expected) == TOTAL
    assert (tmp_path / "resumed.txt").read_text().splitlines() == expected

    a, b = _state(straight), _state(resumed)
    assert a["global_step"] == b["global_step"] == TOTAL
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert any(k.startswith("ema.shadow.") for k in a["state_dict"])
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    for (_, sa), (_, sb) in zip(a["optimizer_states"][0]["state"].items(), b["optimizer_states"][0]["state"].items()):
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key
