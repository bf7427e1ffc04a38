"""Stage configs train exactly the parameter groups they name."""
from __future__ import annotations

import pytest

from worldmodel.config import compose_config
from worldmodel.model.maskgwm import PARAMETER_GROUPS
from worldmodel.training.train import build_module
from worldmodel.training.trainable import select_trainable


def _tiny(overrides=()):
    cfg = compose_config("train", ["model=tiny", *overrides])
    return build_module(cfg, run_config={}).model


def test_only_the_named_groups_train() -> None:
    model = _tiny()
    select_trainable(model, ["spatial", "null_text"])
    allowed = set(PARAMETER_GROUPS["spatial"]) | set(PARAMETER_GROUPS["null_text"])
    for name, p in model.named_parameters():
        assert p.requires_grad == (name.split(".")[0] in allowed), name


def test_none_trains_everything() -> None:
    model = _tiny()
    select_trainable(model, ["action"])
    assert select_trainable(model, None) == sum(p.numel() for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_unknown_group_is_named() -> None:
    with pytest.raises(ValueError, match="spacial"):
        select_trainable(_tiny(), ["spacial"])


def test_stage_config_reaches_the_optimiser() -> None:
    cfg = compose_config("train", ["model=tiny", "trainable=[temporal]"])
    module = build_module(cfg, run_config={})
    optimised = {id(p) for group in module.configure_optimizers()["optimizer"].param_groups for p in group["params"]}
    temporal = {id(p) for n, p in module.model.named_parameters() if n.startswith("temporal_blocks")}
    assert optimised == temporal | {id(p) for n, p in module.model.named_parameters()
                                    if n.split(".")[0] in PARAMETER_GROUPS["temporal"]}
