"""Velocity conversions, the CFG combination and the Euler step stay float32 under bf16 autocast."""
from __future__ import annotations

from types import SimpleNamespace

import torch
from hydra.utils import instantiate
from torch import nn

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow
from worldmodel.diffusion.prediction import output_to_velocity


def test_a_perfect_bf16_clean_frame_prediction_gives_the_velocity_to_1e_3() -> None:
    gen = torch.Generator().manual_seed(0)
    # Clean frames a bf16 network can output exactly, so the only error left is the conversion's own.
    z0 = torch.randn(2, 4, 1, 16, 8, 8, generator=gen).bfloat16().float()
    eps = torch.randn(z0.shape, generator=gen)
    tau = torch.full((2, 4), 0.05)
    z_tau = RectifiedFlow.add_noise(z0, eps, tau)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        velocity = output_to_velocity(z0.bfloat16(), z_tau, tau, "sample")
    assert velocity.dtype == torch.float32
    rms = float((velocity - (eps - z0)).square().mean().sqrt())
    assert rms < 1e-3
    # The tolerance means something: the same formula in bf16 (the earlier code) misses by about 0.05.
    in_bf16 = (z_tau.bfloat16() - z0.bfloat16()) / tau[..., None, None, None, None].bfloat16()
    assert float((in_bf16.float() - (eps - z0)).square().mean().sqrt()) > 1e-2


class HalfPrecisionNet(nn.Module):
    """Outputs the velocity 3 + 2^-6 where actions are on and 3 where they are off, in bf16 as autocast gives it."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(prediction="velocity")

    def forward(self, latents, tau, actions=None, action_valid=None, **kwargs):
        on = action_valid.all(dim=1)[:, None, None, None, None, None]
        return torch.where(on, 3.015625, 3.0).expand_as(latents).bfloat16()


def test_cfg_and_euler_steps_run_in_float32_on_bf16_outputs() -> None:
    reference = torch.randn(2, 1, 1, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    actions, valid = torch.zeros(2, 19), torch.ones(2, 5, dtype=torch.bool)
    sampler = FlowEulerSampler(num_steps=8, cfg_scale=4.5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sampler.sample(HalfPrecisionNet(), reference, 3, actions, valid,
                             generator=torch.Generator().manual_seed(2))
    assert out.dtype == torch.float32
    noise = torch.randn(2, 2, 1, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    # 3 + 4.5 * 2^-6 = 3.0703125 lies between two bf16 numbers (their spacing near 3 is 2^-6): guidance combined
    # in bf16 would round it, and eight Euler steps of 1/8 in bf16 would round the noise they are added to.
    torch.testing.assert_close(out[:, 1:], noise - 3.0703125, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[:, :1], reference, rtol=0, atol=0)


def test_a_quickstart_step_in_bf16_mixed_is_within_2_percent_of_fp32() -> None:
    cfg = compose_config("train", [*TINY_RUN, "objective=rectified_flow_mr"])
    torch.manual_seed(0)
    model = instantiate(cfg.model, _convert_="all").train()
    flow = instantiate(cfg.objective, _convert_="all")
    latents = torch.randn(2, 4, 1, model.config.in_channels, 4, 8, generator=torch.Generator().manual_seed(3))
    # Trained weights are not zero-initialised: perturb every parameter so each block really computes.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))

    def loss() -> torch.Tensor:
        return flow.training_loss(model, latents, torch.tensor([1, 2]), torch.randn(2, 19, generator=torch.Generator()
                                  .manual_seed(4)), torch.ones(2, 5, dtype=torch.bool),
                                  generator=torch.Generator().manual_seed(5))[0]

    fp32 = loss()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = loss()
    assert bf16.dtype == torch.float32
    assert abs(float(bf16) / float(fp32) - 1) < 0.02, (float(bf16), float(fp32))
