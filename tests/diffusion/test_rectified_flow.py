"""Tests for worldmodel.diffusion.RectifiedFlow: path, timestep sampling, action dropout, loss masking."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from worldmodel.diffusion import RectifiedFlow

CONF = Path(__file__).resolve().parents[2] / "conf"


class LinearVelocity(nn.Module):
    """A one-parameter 'network' v = w * z that records what the objective hands it."""

    def __init__(self, reference_offset: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.reference_offset = reference_offset
        self.calls = []

    def forward(self, latents, tau, actions=None, action_valid=None, is_reference=None, **kwargs):
        self.calls.append({"latents": latents, "tau": tau, "action_valid": action_valid,
                           "is_reference": is_reference})
        out = self.w * latents
        return out + self.reference_offset * is_reference[:, :, None, None, None, None].float()


def clip(b=4, t=5, seed=0):
    return torch.randn(b, t, 1, 2, 3, 3, generator=torch.Generator().manual_seed(seed))


def test_add_noise_and_target_golden_values():
    z0 = torch.full((1, 2, 1, 1, 1, 1), 2.0)
    eps = torch.full_like(z0, -1.0)
    tau = torch.tensor([[0.25, 1.0]])
    z = RectifiedFlow.add_noise(z0, eps, tau)
    assert torch.allclose(z.flatten(), torch.tensor([0.75 * 2.0 + 0.25 * -1.0, -1.0]))
    assert torch.equal(RectifiedFlow.target(z0, eps), torch.full_like(z0, -3.0))
    assert torch.equal(RectifiedFlow.add_noise(z0, eps, torch.zeros(1, 2)), z0)


def test_logit_normal_statistics():
    gen = torch.Generator().manual_seed(0)
    tau = RectifiedFlow(logit_mean=0.5, logit_std=0.8).sample_tau(200_000, generator=gen)
    assert ((tau > 0) & (tau < 1)).all()
    logits = torch.logit(tau.double())
    assert abs(logits.mean().item() - 0.5) < 0.01
    assert abs(logits.std().item() - 0.8) < 0.01
    uniform = RectifiedFlow(time_sampling="uniform").sample_tau(200_000, generator=gen)
    assert abs(uniform.mean().item() - 0.5) < 0.01
    with pytest.raises(ValueError, match="time_sampling"):
        RectifiedFlow(time_sampling="cosine")


def test_per_group_dropout_rate():
    flow = RectifiedFlow(action_dropout=0.15)
    valid = torch.ones(40_000, 5, dtype=torch.bool)
    valid[:, 4] = False  # a group the dataset does not have stays dropped
    kept = flow.drop_actions(valid, torch.Generator().manual_seed(0)).float()
    assert torch.allclose(kept[:, :4].mean(dim=0), torch.full((4,), 0.85), atol=0.01)
    assert kept[:, 4].eq(0).all()
    # Groups are dropped independently: the joint keep rate of two groups is 0.85 ** 2.
    assert abs((kept[:, 0] * kept[:, 1]).mean().item() - 0.85 ** 2) < 0.01


def test_reference_frames_are_clean_and_predicted_frames_share_tau():
    flow = RectifiedFlow()
    model = LinearVelocity()
    latents = clip()
    num_reference = torch.tensor([0, 1, 2, 3])
    flow.training_loss(model, latents, num_reference, torch.randn(4, 19), None,
                       generator=torch.Generator().manual_seed(0))
    call = model.calls[0]
    expected = torch.arange(5)[None] < num_reference[:, None]
    assert torch.equal(call["is_reference"], expected)
    assert call["tau"][expected].eq(0).all()
    assert torch.equal(call["latents"][expected], latents[expected])
    for i in range(4):
        predicted = call["tau"][i][~expected[i]]
        assert (predicted == predicted[0]).all() and predicted[0] > 0
    assert call["action_valid"].shape == (4, 5) and call["action_valid"].dtype == torch.bool


def test_reference_frames_excluded_from_loss():
    latents = clip()
    num_reference = torch.tensor([1, 2, 0, 3])
    losses = {}
    for offset in (0.0, 100.0):
        for on_reference in (False, True):
            flow = RectifiedFlow(loss_on_reference=on_reference)
            loss, _ = flow.training_loss(LinearVelocity(offset), latents, num_reference,
                                         generator=torch.Generator().manual_seed(3))
            losses[offset, on_reference] = loss.item()
    assert losses[0.0, False] == losses[100.0, False]
    assert losses[100.0, True] > losses[0.0, True] + 100.0


def test_loss_is_the_mse_of_predicted_frames():
    latents = clip(b=2, t=3)
    flow = RectifiedFlow()
    model = LinearVelocity()
    gen = torch.Generator().manual_seed(7)
    loss, logs = flow.training_loss(model, latents, torch.tensor([1, 0]), generator=gen)
    # Replay the same draws: tau first, then eps.
    gen = torch.Generator().manual_seed(7)
    tau = flow.sample_tau(2, generator=gen)
    eps = torch.randn(latents.shape, generator=gen)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    tau_frames = torch.where(mask, tau[:, None], torch.zeros(2, 3))
    pred = 0.5 * flow.add_noise(latents, eps, tau_frames)
    expected = (pred - (eps - latents))[mask].square().mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert logs["loss"] == loss.detach() and "action_keep_rate" not in logs


def test_loss_trains_the_tiny_model():
    torch.manual_seed(0)
    model = instantiate(OmegaConf.load(CONF / "model" / "tiny.yaml"))
    flow = instantiate(OmegaConf.load(CONF / "objective" / "rectified_flow.yaml"))
    latents = torch.randn(2, 3, 1, 48, 8, 8)
    loss, logs = flow.training_loss(model, latents, torch.tensor([1, 2]), torch.randn(2, 19),
                                    torch.ones(2, 5, dtype=torch.bool), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss > 0
    assert 0.0 <= logs["action_keep_rate"] <= 1.0
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert grads["proj_out.weight"].abs().sum() > 0
    assert grads["temporal_blocks.0.adaLN_modulation.1.weight"].abs().sum() > 0
