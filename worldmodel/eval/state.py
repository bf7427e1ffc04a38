"""The resumable state of an evaluation: accumulated statistics on disk, tied to the run it belongs to."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from worldmodel.errors import UserInputError
from worldmodel.eval.accumulate import EvalAccumulator
from worldmodel.eval.inception import load_error_reason
from worldmodel.files import atomic_path


class EvalStateError(UserInputError, RuntimeError):
    """A run folder's saved state belongs to another evaluation, or is not a state worldmodel-eval wrote."""


def _refusal(error: Exception) -> str:
    """The line of torch's weights-only refusal that names what the file asked for ("... GLOBAL posix.system ..."),
    not the paragraph of advice around it (which suggests weights_only=False: exactly what must not happen here)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "nsupported" in line]
    if not named:
        return load_error_reason(error)
    # torch goes on, in the same line, to say how to allow the global: advice that must not be taken here.
    return named[0].split(" Please use", 1)[0].rstrip(". ")[:200]


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
        state = self._read()
        if state.get("fingerprint") != self.fingerprint:
            raise EvalStateError(
                f"{self.path} holds an evaluation of another protocol, checkpoint or sampler setting "
                f"(fingerprint {state.get('fingerprint')} != {self.fingerprint}); pick a new run_dir to start this one")
        accumulator.load_state_dict(state["accumulator"])
        return len(accumulator.done)

    def _read(self) -> dict[str, Any]:
        """The saved dict, read weights-only: a run folder may come from anyone, and a full unpickler runs whatever
        code the file names. Ours holds only tensors, numbers, strings, lists and dicts (EvalAccumulator.state_dict).
        """
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:  # the weights-only unpickler refused a class or function: never run
            raise EvalStateError(
                f"{self.path} is not a state written by worldmodel-eval: it holds objects other than tensors and "
                f"plain values ({_refusal(err)}), so it was not loaded; delete it or pick a new run_dir"
            ) from None
        except Exception as err:  # truncated zips and foreign files raise several types
            raise EvalStateError(
                f"{self.path} cannot be read as a state of worldmodel-eval ({load_error_reason(err)}); "
                f"delete it or pick a new run_dir") from None
        if not isinstance(state, dict) or "accumulator" not in state:
            raise EvalStateError(f"{self.path} is not a state written by worldmodel-eval (no accumulator in it); "
                                 f"delete it or pick a new run_dir")
        return state

    def load(self, accumulator: EvalAccumulator) -> EvalAccumulator:
        """Fill `accumulator` from this file, which must exist and match (used to merge shards)."""
        if not self.restore(accumulator):
            raise EvalStateError(f"{self.path} is missing or holds no video")
        return accumulator

    def save(self, accumulator: EvalAccumulator) -> Path:
        with atomic_path(self.path) as tmp:
            torch.save({"fingerprint": self.fingerprint, "accumulator": accumulator.state_dict()}, tmp)
        return self.path
