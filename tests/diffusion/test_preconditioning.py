"""EDM preconditioning on the rectified-flow path: golden coefficients, the best linear guess, exact velocity."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow
from worldmodel.diffusion.prediction import SIGMA_DATA, output_to_velocity, preconditioning, sigma_data_of
from worldmodel.model import build_maskgwm


class PreconditionedOracle(nn.Module):
    """Outputs the F that makes c_skip z_tau + c_out F the true clean clip, as a perfect network would."""

    def __init__(self, z0: torch.Tensor, sigma_data: float) -> None:
        super().__init__()
        self.z0 = z0
        self.config = SimpleNamespace(prediction="preconditioned", sigma_data=sigma_data)

    def forward(self, latents, tau, **kwargs):
        c_skip, c_out = preconditioning(tau[..., None, None, None, None], self.config.sigma_data)
        # References sit at tau = 0, where c_out = 0 and any F gives z0_hat = z_tau.
        return torch.where(c_out > 0, (self.z0 - c_skip * latents) / c_out.clamp(min=1e-12), torch.zeros_like(latents))


def test_golden_coefficients() -> None:
    tau = torch.tensor([0.0, 0.5, 1.0])
    c_skip, c_out = preconditioning(tau, 0.5)
    # tau 0.5, s 0.5: var = 0.25 * 0.25 + 0.25 = 0.3125; c_skip = 0.5 * 0.25 / var; c_out = 0.25 / sqrt(var).
    torch.testing.assert_close(c_skip, torch.tensor([1.0, 0.4, 0.0]))
    torch.testing.assert_close(c_out, torch.tensor([0.0, 0.25 / 0.3125**0.5, 0.5]))


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.9])
def test_c_skip_is_the_least_squares_guess_and_c_out_its_error(tau: float) -> None:
    """For z0 ~ N(0, s^2): regressing z0 on z_tau gives c_skip, and the residual spread is c_out."""
    generator = torch.Generator().manual_seed(0)
    s = 0.7
    z0 = s * torch.randn(400_000, generator=generator, dtype=torch.float64)
    z_tau = (1 - tau) * z0 + tau * torch.randn(400_000, generator=generator, dtype=torch.float64)
    slope = (z0 * z_tau).mean() / (z_tau * z_tau).mean()
    c_skip, c_out = preconditioning(torch.tensor(tau, dtype=torch.float64), s)
    assert abs(slope.item() - c_skip.item()) < 0.01
    assert abs((z0 - c_skip * z_tau).std().item() - c_out.item()) < 0.01


def test_oracle_output_gives_the_exact_velocity_and_zero_output_the_linear_guess() -> None:
    z0, eps = torch.randn(2, 3, 1, 4, 2, 2), torch.randn(2, 3, 1, 4, 2, 2)
    tau = torch.tensor([[0.3, 0.5, 1.0], [0.9, 0.2, 0.06]])
    z_tau = RectifiedFlow.add_noise(z0, eps, tau)
    oracle = PreconditionedOracle(z0, 0.8)
    velocity = output_to_velocity(oracle(z_tau, tau), z_tau, tau, "preconditioned", 0.8)
    torch.testing.assert_close(velocity, eps - z0, rtol=1e-4, atol=1e-4)
    # F = 0: the clean estimate z_tau - tau v is c_skip z_tau, so a nearly clean frame passes through.
    small = torch.full((1, 1), 0.06)
    z = torch.randn(1, 1, 3)
    v = output_to_velocity(torch.zeros_like(z), z, small, "preconditioned", 0.5)
    c_skip, _ = preconditioning(small, 0.5)
    torch.testing.assert_close(z - small[..., None] * v, c_skip[..., None] * z)
    assert abs(c_skip.item() - 1.0) < 0.05


def test_sampler_with_a_preconditioned_oracle_lands_on_the_clip() -> None:
    z0 = torch.randn(1, 4, 1, 3, 2, 2)
    out = FlowEulerSampler(num_steps=5, cfg_scale=1.0, churn=1.0).sample(
        PreconditionedOracle(z0, 0.5), z0[:, :1], 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, z0, rtol=1e-4, atol=1e-4)


def test_objective_loss_is_zero_for_a_preconditioned_oracle() -> None:
    z0 = torch.randn(2, 4, 1, 3, 2, 2)
    flow = RectifiedFlow(logit_std=0.1)
    loss, _ = flow.training_loss(PreconditionedOracle(z0, 0.5), z0, torch.tensor([1, 2]),
                                 generator=torch.Generator().manual_seed(3))
    assert loss.item() < 1e-8


def test_model_config_carries_sigma_data_and_rejects_a_bad_one() -> None:
    assert sigma_data_of(nn.Identity()) == SIGMA_DATA
    small = dict(sample_size=8, patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8,
                 num_attention_heads=2, joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=16,
                 pos_embed_max_size=8, max_frames=4, num_null_text_tokens=2)
    model = build_maskgwm(**small, prediction="preconditioned", sigma_data=0.3)
    assert sigma_data_of(model) == 0.3
    with pytest.raises(ValueError, match="sigma_data"):
        build_maskgwm(**small, prediction="preconditioned", sigma_data=0.0)
