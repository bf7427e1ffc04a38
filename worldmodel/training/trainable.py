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


def idle_groups(model: nn.Module, objective: object) -> list[str]:
    """The parameter groups the objective never runs: the MR modules when MR is off."""
    if getattr(objective, "mr_probability", 0.0) == 0.0 and getattr(model, "reconstruction", None) is not None:
        return ["mr"]
    return []


def idle_parameter_names(model: nn.Module, objective: object) -> set[str]:
    """Names (in `model`) of the parameters of `idle_groups`."""
    owners = [name for group in idle_groups(model, objective) for name in PARAMETER_GROUPS[group]]
    return {name for name, _ in model.named_parameters()
            if any(name == owner or name.startswith(f"{owner}.") for owner in owners)}


def freeze_idle_groups(model: nn.Module, objective: object) -> list[str]:
    """Freeze the parameter groups the objective never runs (the MR modules when MR is off); returns their names.

    Under DDP every trainable parameter must receive a gradient at every step (no unused-parameter search), and
    an idle module's AdamW state would only cost memory. A later stage that turns MR on trains them again.
    """
    idle = idle_groups(model, objective)
    for group in idle:
        for name in PARAMETER_GROUPS[group]:
            module = getattr(model, name, None)
            if isinstance(module, nn.Module):
                module.requires_grad_(False)
    return idle
