"""Tests for worldmodel.model.MaskToken: m_tau = (1 - tau) f_m(eps) + tau p."""

import math

import torch
from einops import rearrange

from worldmodel.model import MaskToken


def test_golden_values_at_tau_0_half_and_1():
    token = MaskToken(in_channels=3, hidden_size=4, patch_size=2)
    with torch.no_grad():
        first, second = token.noise_embed[0], token.noise_embed[2]
        first.weight.zero_()
        first.bias.fill_(1.0)  # f_m = second(SiLU(1)) whatever eps is
        second.weight.copy_(torch.eye(4)[:, :, None, None])
        second.bias.zero_()
        token.token.fill_(2.0)
    f = 1.0 / (1.0 + math.exp(-1.0))  # SiLU(1) = 0.7310586
    out = token(torch.randn(3, 3, 4, 6), torch.tensor([0.0, 0.5, 1.0]))
    assert out.shape == (3, 2 * 3, 4)
    assert torch.allclose(out[0], torch.full((6, 4), f))
    assert torch.allclose(out[1], torch.full((6, 4), 0.5 * f + 1.0))
    assert torch.allclose(out[2], torch.full((6, 4), 2.0))


def test_low_noise_token_encodes_eps_and_high_noise_token_is_p():
    torch.manual_seed(0)
    token = MaskToken(in_channels=3, hidden_size=8, patch_size=2)
    eps = torch.randn(2, 3, 4, 4)
    other = torch.randn(2, 3, 4, 4)
    f = rearrange(token.noise_embed(eps), "n d h w -> n (h w) d")
    assert torch.allclose(token(eps, torch.zeros(2)), f)
    assert not torch.allclose(token(eps, torch.zeros(2)), token(other, torch.zeros(2)))
    assert torch.equal(token(eps, torch.ones(2)), token(other, torch.ones(2)))
    assert torch.allclose(token(eps, torch.ones(2)), token.token.expand(2, 4, 8))
