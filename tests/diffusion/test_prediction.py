"""Sample prediction converts to the true velocity, and the sampler follows it to the clean clip."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow
from worldmodel.diffusion.prediction import MIN_TAU, output_to_velocity, prediction_of


class CleanOracle(nn.Module):
    """Outputs the true clean clip, as a perfect sample-predicting network would."""

    def __init__(self, z0: torch.Tensor) -> None:
        super().__init__()
        self.z0 = z0
        self.config = SimpleNamespace(prediction="sample")

    def forward(self, latents, tau, **kwargs):
        return self.z0.expand_as(latents)


def test_clean_output_gives_the_exact_velocity() -> None:
    z0, eps = torch.randn(2, 3, 1, 4, 2, 2), torch.randn(2, 3, 1, 4, 2, 2)
    tau = torch.tensor([[0.3, 0.5, 1.0], [0.9, 0.2, 0.06]])
    z_tau = RectifiedFlow.add_noise(z0, eps, tau)
    velocity = output_to_velocity(z0, z_tau, tau, "sample")
    torch.testing.assert_close(velocity, eps - z0, rtol=1e-4, atol=1e-4)


def test_velocity_output_passes_through_and_small_tau_is_capped() -> None:
    out = torch.randn(1, 1, 3)
    assert output_to_velocity(out, torch.zeros_like(out), torch.tensor([[0.5]]), "velocity") is out
    z = torch.ones(1, 1, 3)
    capped = output_to_velocity(torch.zeros_like(z), z, torch.tensor([[0.0]]), "sample")
    torch.testing.assert_close(capped, z / MIN_TAU)
    with pytest.raises(ValueError, match="prediction"):
        output_to_velocity(out, out, torch.tensor([[0.5]]), "epsilon")


def test_sampler_with_a_clean_oracle_lands_on_the_clip() -> None:
    z0 = torch.randn(1, 4, 1, 3, 2, 2)
    out = FlowEulerSampler(num_steps=5, cfg_scale=1.0).sample(CleanOracle(z0), z0[:, :1], 4,
                                                             generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, z0, rtol=1e-4, atol=1e-4)


def test_objective_loss_is_zero_for_a_clean_oracle() -> None:
    z0 = torch.randn(2, 4, 1, 3, 2, 2)
    # A narrow logit-normal keeps tau near 0.5, far above the MIN_TAU cap, so the identity is exact.
    flow = RectifiedFlow(logit_std=0.1)
    generator = torch.Generator().manual_seed(3)
    loss, _ = flow.training_loss(CleanOracle(z0), z0, torch.tensor([1, 2]), generator=generator)
    assert loss.item() < 1e-8


def test_models_without_config_predict_velocity() -> None:
    assert prediction_of(nn.Identity()) == "velocity"
