"""Two real processes (gloo, CPU) whose clips draw different MR mask kinds train in lockstep under DDP (without
find_unused_parameters) and FSDP: no hang, and the weights of one process with the doubled batch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
# A rank that skips a collective the other waits in hangs until gloo's 30-minute timeout: stop long before.
TIMEOUT_S = 240
TWO_CPU_RANKS = ["trainer.accelerator=cpu", "trainer.devices=2", "data.batch_size=1"]


def _run(run_dir: Path, overrides: list[str]) -> dict[int, dict[str, torch.Tensor]]:
    _finished(run_dir, overrides)
    return {int(p.stem.removeprefix("rank")): torch.load(p, weights_only=True)
            for p in sorted((run_dir / "rank_weights").glob("rank*.pt"))}


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> dict[str, torch.Tensor]:
    """The reference: one process, both clips of every step in one batch of 2 (F_s on row 0, F_t on row 1)."""
    weights = _run(tmp_path_factory.mktemp("single"), ["trainer=cpu", "data.batch_size=2"])
    return weights[0]


def test_ddp_ranks_with_different_mask_kinds_stay_identical_without_unused_parameter_search(
        tmp_path: Path, one_process: dict[str, torch.Tensor]) -> None:
    ranks = _run(tmp_path, ["trainer=ddp", *TWO_CPU_RANKS])
    assert sorted(ranks) == [0, 1]
    assert _max_difference(ranks[0], ranks[1]) == 0.0
    assert _max_difference(ranks[0], one_process) < 1e-5
    # Both reconstruction branches moved (each rank ran one kind only, the gradients met in the all-reduce).
    trained = [k for k in ranks[0] if ".reconstruction." in k and k.endswith("norm1.linear.weight")]
    assert trained


def test_fsdp_ranks_with_different_mask_kinds_train_the_weights_of_one_process(
        tmp_path: Path, one_process: dict[str, torch.Tensor]) -> None:
    ranks = _run(tmp_path, ["trainer=fsdp", *TWO_CPU_RANKS, "trainer.strategy.state_dict_type=full",
                            "trainer.precision=32-true", "gradient_checkpointing=false"])
    # The live weights and the EMA shadow (averaged shard by shard on each rank) both match.
    assert any(k.startswith("ema.shadow.") for k in ranks[0])
    assert _max_difference(ranks[0], one_process) < 1e-5
    assert ranks[1] == {}  # the full weights are gathered onto rank 0 alone


UNWARPABLE_RANK_1_AT_STEP_1 = [
    "trainer=fsdp", *TWO_CPU_RANKS, "trainer.precision=32-true", "gradient_checkpointing=false",
    "+callbacks.drop_calibration._target_=tests.training.rank_kinds.DropCalibrationOnRank",
    "+callbacks.drop_calibration.rank=1", "+callbacks.drop_calibration.step=1"]


def _finished(run_dir: Path, overrides: list[str]) -> str:
    """Run `tests.training.rank_run` with `overrides`; the joint log of its ranks once all finished."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "tests.training.rank_run", str(run_dir), *overrides],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the run did not finish in {TIMEOUT_S} s (ranks out of step?):\n{hung.stderr}")
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout + done.stderr


def test_fsdp_ranks_agree_on_self_forcing_when_one_rank_cannot_warp(tmp_path: Path) -> None:
    # Self-forced steps sample with the EMA weights, whose FSDP units every rank gathers: each step's choice
    # comes from the step number (steps 0-2 are chosen at probability 0.5), and at step 1 rank 1's clip has no
    # calibration to warp, so neither rank samples there.
    log = _finished(tmp_path, [*UNWARPABLE_RANK_1_AT_STEP_1, "self_forcing.probability=0.5",
                               "self_forcing.generated_frames=1", "self_forcing.num_steps=2"])
    assert log.count("step 1 not self-forced") == 2, log[-4000:]  # both ranks skipped it
    assert "step 0 not self-forced" not in log and "step 2 not self-forced" not in log


def test_fsdp_ranks_train_in_step_with_warp_prior_and_warp_condition_when_one_rank_cannot_warp(tmp_path: Path) -> None:
    # Starting from the warp prior and the warp condition change a sample's inputs, never which modules run: a
    # rank without a warp feeds the zero warp through the same embedding.
    _finished(tmp_path, [*UNWARPABLE_RANK_1_AT_STEP_1, "objective.warp_prior_probability=0.5",
                         "model.warp_condition=true"])
