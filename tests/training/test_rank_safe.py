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
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-m", "tests.training.rank_run", str(run_dir), *overrides], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the run did not finish in {TIMEOUT_S} s (ranks out of step?):\n{hung.stderr}")
    assert done.returncode == 0, done.stderr[-4000:]
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
