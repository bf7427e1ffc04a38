"""The resumable state of an evaluation: accumulated statistics on disk, tied to the run it belongs to."""
from __future__ import annotations

from pathlib import Path

import torch

from worldmodel.eval.accumulate import EvalAccumulator
from worldmodel.files import atomic_path


class EvalStateError(RuntimeError):
    """A run folder's saved state belongs to another evaluation (protocol, checkpoint or sampler)."""


class EvalState:
    """`eval_state.pt` in a run folder: written atomically, so a crash leaves the previous save intact."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = Path(path), fingerprint

    def restore(self, accumulator: EvalAccumulator, resume: bool = True) -> int:
        """Load the saved videos into `accumulator` when the state matches; returns how many were done."""
        if not self.path.is_file():
            return 0
        if not resume:
            raise EvalStateError(f"{self.path} exists and resume=false: pick a new run_dir, or resume=true to go on "
                                 "from it (nothing is overwritten)")
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") != self.fingerprint:
            raise EvalStateError(
                f"{self.path} holds an evaluation of another protocol, checkpoint or sampler setting "
                f"(fingerprint {state.get('fingerprint')} != {self.fingerprint}); pick a new run_dir to start this one")
        accumulator.load_state_dict(state["accumulator"])
        return len(accumulator.done)

    def load(self, accumulator: EvalAccumulator) -> EvalAccumulator:
        """Fill `accumulator` from this file, which must exist and match (used to merge shards)."""
        if not self.restore(accumulator):
            raise EvalStateError(f"{self.path} is missing or holds no video")
        return accumulator

    def save(self, accumulator: EvalAccumulator) -> Path:
        with atomic_path(self.path) as tmp:
            torch.save({"fingerprint": self.fingerprint, "accumulator": accumulator.state_dict()}, tmp)
        return self.path
