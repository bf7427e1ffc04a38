"""Two real processes (gloo, CPU) whose clips draw different MR mask kinds train in lockstep under DDP (without
find_unused_parameters) and FSDP: no hang, and the weights of one process with the doubled batch. Also under FSDP:
self-forcing and the warp prior when one rank cannot warp, and an exact resume from a sharded checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.training.rank_run import run_ranks

TWO_CPU_RANKS = ["trainer.accelerator=cpu", "trainer.devices=2", "data.batch_size=1"]


def _weights(run_dir: Path) -> dict[int, dict[str, torch.Tensor]]:
    """Each rank's weights as `SaveRankWeights` wrote them at the end of the run."""
    return {int(p.stem.removeprefix("rank")): torch.load(p, weights_only=True)
            for p in sorted((run_dir / "rank_weights").glob("rank*.pt"))}


def _run(run_dir: Path, overrides: list[str]) -> dict[int, dict[str, torch.Tensor]]:
    run_ranks(run_dir, overrides)
    return _weights(run_dir)


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


def test_fsdp_ranks_agree_on_self_forcing_when_one_rank_cannot_warp(tmp_path: Path) -> None:
    # Self-forced steps sample with the EMA weights, whose FSDP units every rank gathers: each step's choice
    # comes from the step number (steps 0-2 are chosen at probability 0.5), and at step 1 rank 1's clip has no
    # calibration to warp, so neither rank samples there.
    log = run_ranks(tmp_path, [*UNWARPABLE_RANK_1_AT_STEP_1, "extension=self_forcing",
                               "extension.self_forcing.generated_frames=1", "extension.self_forcing.num_steps=2"])
    assert log.count("step 1 not self-forced") == 2, log[-4000:]  # both ranks skipped it
    assert "step 0 not self-forced" not in log and "step 2 not self-forced" not in log


def test_fsdp_ranks_train_in_step_with_warp_prior_and_warp_condition_when_one_rank_cannot_warp(tmp_path: Path) -> None:
    # Starting from the warp prior and the warp condition change a sample's inputs, never which modules run: a
    # rank without a warp feeds the zero warp through the same embedding.
    run_ranks(tmp_path, [*UNWARPABLE_RANK_1_AT_STEP_1, "extension=warp_prior",
                         "model.warp_condition=true"])


def test_a_sharded_fsdp_checkpoint_resumes_to_the_uninterrupted_runs_weights(tmp_path: Path) -> None:
    fsdp = ["trainer=fsdp", *TWO_CPU_RANKS, "trainer.precision=32-true", "gradient_checkpointing=false",
            "callbacks.checkpoint.every_n_train_steps=2", "trainer.val_check_interval=2"]
    whole = _run(tmp_path / "whole", [*fsdp, "trainer.max_steps=4"])
    _run(tmp_path / "halves", [*fsdp, "trainer.max_steps=2"])
    last = tmp_path / "halves" / "checkpoints" / "last.ckpt"
    # Each rank wrote its own shard of weights, optimiser and EMA state.
    assert sorted(p.name for p in last.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    log = run_ranks(tmp_path / "halves", [*fsdp, "trainer.max_steps=4", "ckpt_path=last"])
    assert f"Restored all states from the checkpoint at {last}" in log
    resumed = _weights(tmp_path / "halves")
    assert any(k.startswith("ema.shadow.") for k in resumed[0])
    assert _max_difference(resumed[0], whole[0]) == 0.0
