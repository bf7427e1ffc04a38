"""Which parameter groups of MaskGWM a training stage updates (the paper trains in stages)."""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from worldmodel.model.maskgwm import PARAMETER_GROUPS


def select_trainable(model: nn.Module, groups: Sequence[str] | None) -> int:
    """Freeze every top-level module outside `groups` (None: train all); returns the trainable count.

    Frozen parameters get requires_grad=False, so they cost no gradient or optimiser memory.
    """
    if groups is None:
        model.requires_grad_(True)
        return sum(p.numel() for p in model.parameters())
    unknown = sorted(set(groups) - set(PARAMETER_GROUPS))
    if unknown:
        raise ValueError(f"trainable names unknown parameter groups {unknown}; choose from {sorted(PARAMETER_GROUPS)}")
    chosen = {name for group in groups for name in PARAMETER_GROUPS[group]}
    for name, param in model.named_parameters():
        param.requires_grad_(name.split(".")[0] in chosen)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if count == 0:
        raise ValueError(f"trainable={list(groups)} leaves no parameter to train in this model")
    return count


def freeze_idle_groups(model: nn.Module, objective: object) -> list[str]:
    """Freeze the parameter groups the objective never runs (the MR modules when MR is off); returns their names.

    Under DDP every trainable parameter must receive a gradient at every step (no unused-parameter search), and
    an idle module's AdamW state would only cost memory. A later stage that turns MR on trains them again.
    """
    idle = []
    if getattr(objective, "mr_probability", 0.0) == 0.0 and getattr(model, "reconstruction", None) is not None:
        idle.append("mr")
    for group in idle:
        for name in PARAMETER_GROUPS[group]:
            module = getattr(model, name, None)
            if isinstance(module, nn.Module):
                module.requires_grad_(False)
    return idle
