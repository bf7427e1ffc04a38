"""What a run does when something goes wrong: non-finite losses, unreadable clips, running out of memory."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

NONFINITE_POLICIES = ("stop", "skip")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (and the policy is stop, or too many steps were skipped)."""


class BadSampleFractionError(RuntimeError):
    """More clips failed to load than `faults.max_bad_sample_fraction` allows."""


class OutOfMemoryAdvice(RuntimeError):
    """Out of memory, with what to change in the config."""


@dataclass(frozen=True)
class FaultPolicy:
    """The `faults:` section of the train config."""

    nonfinite_loss: str = "stop"          # stop: raise; skip: drop the step (no update, no EMA)
    max_skipped_steps: int = 10           # skip: raise once more steps than this were dropped
    max_bad_sample_fraction: float = 0.05  # failed loads / attempted loads, judged after min_reads
    min_reads: int = 64                   # attempted loads before the fraction is judged

    def __post_init__(self) -> None:
        if self.nonfinite_loss not in NONFINITE_POLICIES:
            raise ValueError(f"faults.nonfinite_loss must be one of {NONFINITE_POLICIES}, got {self.nonfinite_loss!r}")
        if not 0.0 <= self.max_bad_sample_fraction <= 1.0:
            raise ValueError(f"faults.max_bad_sample_fraction must lie in [0, 1], got {self.max_bad_sample_fraction}")


def describe_batch(batch: dict[str, Any], batch_idx: int, step: int, epoch: int) -> str:
    """'global step 12 (epoch 0, batch 12; clips a, b)': where a fault happened, for the message."""
    scenes = [str(m.get("scene", "?")) for m in batch.get("meta", [])]
    clips = f"; clips {', '.join(scenes[:8])}{' ...' if len(scenes) > 8 else ''}" if scenes else ""
    return f"global step {step} (epoch {epoch}, batch {batch_idx}{clips})"


class BadSampleCounter:
    """Counts failed and attempted clip loads from the batches' `load_failures` (exact across workers).

    Counts are per rank (each rank reads its own shard); the fraction limit applies on each rank.
    """

    def __init__(self, policy: FaultPolicy) -> None:
        self.policy = policy
        self.failed = 0
        self.attempted = 0

    def update(self, batch: dict[str, Any], where: str) -> int:
        """Add one batch; returns its failures and raises BadSampleFractionError past the limit."""
        failures = int(batch["load_failures"].sum()) if "load_failures" in batch else 0
        self.failed += failures
        self.attempted += failures + int(batch["num_reference"].shape[0])
        fraction = self.failed / max(1, self.attempted)
        if self.attempted >= self.policy.min_reads and fraction > self.policy.max_bad_sample_fraction:
            raise BadSampleFractionError(
                f"{self.failed} of {self.attempted} clip loads failed ({fraction:.1%}) by {where}, more than "
                f"faults.max_bad_sample_fraction={self.policy.max_bad_sample_fraction}; the log names each "
                f"skipped clip and its error. Fix or remove those files, or raise the limit")
        return failures

    def state_dict(self) -> dict[str, int]:
        return {"failed": self.failed, "attempted": self.attempted}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.failed, self.attempted = int(state["failed"]), int(state["attempted"])


OOM_ADVICE = (
    "out of memory while training. What to change, cheapest first:\n"
    "  - a smaller batch: data.batch_size=<half> (and trainer.accumulate_grad_batches=2 to keep the effective batch)\n"
    "  - gradient_checkpointing=true (recomputes block activations in the backward pass)\n"
    "  - precision: trainer.precision=bf16-mixed on GPUs that support it\n"
    "  - mask reconstruction shortens the token sequence: objective=rectified_flow_mr\n"
    "  - shard weights, gradients and optimiser state over GPUs: trainer=fsdp\n"
    "  - fewer frames or a smaller size: data.clip.num_frames=..., data.clip.size=[h,w]")


def is_out_of_memory(err: BaseException) -> bool:
    """True for torch's OutOfMemoryError and for RuntimeErrors that say 'out of memory'."""
    return isinstance(err, torch.OutOfMemoryError) or (isinstance(err, RuntimeError) and "out of memory" in str(err))


@contextmanager
def oom_advice() -> Iterator[None]:
    """Re-raise out-of-memory errors as OutOfMemoryAdvice naming the config switches that help."""
    try:
        yield
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OutOfMemoryAdvice(f"{OOM_ADVICE}\n(original error: {type(err).__name__}: {first_line})") from err
