"""No trainable module sits idle in a step: MR modules are frozen when MR is off, the warp embedding always runs."""
from __future__ import annotations

import torch
from hydra.utils import instantiate

from worldmodel.config import compose_config
from worldmodel.diffusion import RectifiedFlow
from worldmodel.training.trainable import freeze_idle_groups


def _tiny(overrides: list[str] = ()) -> torch.nn.Module:
    torch.manual_seed(0)
    return instantiate(compose_config("train", ["model=tiny", *overrides]).model, _convert_="all").train()


def test_mr_modules_are_frozen_only_when_the_objective_never_masks() -> None:
    model = _tiny()
    assert freeze_idle_groups(model, RectifiedFlow()) == ["mr"]
    assert not any(p.requires_grad for p in model.reconstruction.parameters())
    assert not any(p.requires_grad for p in model.mask_token.parameters())
    assert all(p.requires_grad for p in model.transformer_blocks.parameters())
    with_mr = _tiny()
    assert freeze_idle_groups(with_mr, RectifiedFlow(mr_probability=1.0)) == []
    assert all(p.requires_grad for p in with_mr.parameters())


def test_every_trainable_parameter_gets_a_gradient_in_a_plain_step() -> None:
    """What DDP without find_unused_parameters needs, checked in one process."""
    model = _tiny(["model.warp_condition=true"])
    flow = RectifiedFlow(action_dropout=1.0)  # every action group dropped: the embedding must still run
    freeze_idle_groups(model, flow)
    latents = torch.randn(2, 3, 1, model.config.in_channels, 4, 8)
    # No prior (clips without calibration): the warp embedding runs on zero warps that count for nothing.
    loss, _ = flow.training_loss(model, latents, torch.tensor([1, 1]), torch.randn(2, 19),
                                 torch.ones(2, 5, dtype=torch.bool), generator=torch.Generator().manual_seed(0))
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_the_zero_warp_is_exactly_no_warp() -> None:
    model = _tiny(["model.warp_condition=true"]).eval()
    latents = torch.randn(2, 3, 1, model.config.in_channels, 4, 8)
    tau = torch.tensor([[0.0, 0.5, 0.5], [0.0, 0.2, 0.2]])
    with torch.no_grad():
        plain = model(latents, tau)
        zero = model(latents, tau, warp=torch.zeros_like(latents), warp_valid=torch.zeros(2, 3, dtype=torch.bool))
    assert torch.equal(plain, zero)
