"""A checkpoint's optimiser state matched to the parameters this run trains.

Runs before the idle groups were frozen (`trainable.freeze_idle_groups`: the MR modules of an MR-off run) listed
those parameters in AdamW's parameter group too; they never received a gradient, so AdamW kept no state for them.
Their entries are dropped and the others renumbered, so that such a checkpoint resumes exactly. Any other
difference in the number of parameters means the run trains another set than the checkpoint did (`trainable=`,
the objective) and is refused, naming both counts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from worldmodel.training.resume import ResumeError


def match_optimizer_state(optimizer_states: list[dict[str, Any]], model: nn.Module, idle: set[str],
                          source: str | Path) -> bool:
    """Rewrite, in place, the one AdamW state of `optimizer_states` (a Lightning checkpoint's) whose parameter
    group lists the `idle` parameters (names in `model`, frozen in this run) beside the trainable ones, so that it
    lists the trainable ones alone. Returns whether it rewrote anything. Sharded (FSDP) states are keyed by name,
    not position, and are left to FSDP."""
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    for state in optimizer_states:
        groups = state.get("param_groups", [])
        if len(groups) != 1 or not all(isinstance(i, int) for i in groups[0].get("params", ())):
            continue
        listed = groups[0]["params"]
        if len(listed) == len(trainable):
            continue
        earlier = [name for name, p in model.named_parameters() if p.requires_grad or name in idle]
        if len(listed) != len(earlier):
            raise ResumeError(
                f"{source}: its optimiser state holds {len(listed)} parameters but this run trains {len(trainable)}: "
                f"resume with the trainable= and objective the checkpoint's run had (they decide which parameters "
                f"train), or start a new run from its weights")
        renumbered: dict[int, int] = {}
        for old, name in zip(listed, earlier, strict=True):
            if name not in idle:
                renumbered[old] = len(renumbered)
        state["state"] = {renumbered[i]: s for i, s in state["state"].items() if i in renumbered}
        groups[0]["params"] = list(range(len(renumbered)))
        return True
    return False
