"""Context-frame noise on the shelf: the objective noises the references alone, the sampler shows noised ones."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.diffusion.test_rectified_flow import LinearVelocity, clip
from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow
from worldmodel.experimental.reference_noise import NoisyReferenceSampler, ReferenceNoise


class ReferenceRecorder(nn.Module):
    """Zero velocity; records the reference frames it is shown."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, latents, tau, actions=None, action_valid=None, is_reference=None, **kwargs):
        self.seen.append(latents[is_reference].clone())
        return torch.zeros_like(latents)


def test_the_objective_noises_only_the_reference_frames_to_the_drawn_level() -> None:
    latents = clip(b=6, t=3)
    num_reference = torch.tensor([2, 1, 2, 0, 2, 1])
    plain, noisy = LinearVelocity(), LinearVelocity()
    RectifiedFlow().training_loss(plain, latents, num_reference, generator=torch.Generator().manual_seed(5))
    RectifiedFlow(extensions=[ReferenceNoise(max_level=0.5)]).training_loss(
        noisy, latents, num_reference, generator=torch.Generator().manual_seed(5))
    seen, clean = noisy.calls[0], plain.calls[0]
    # Replay the draws: tau, eps (the core's), then the extension's level per sample and its noise.
    gen = torch.Generator().manual_seed(5)
    flow = RectifiedFlow()
    tau = flow.sample_tau(6, generator=gen)
    torch.randn(latents.shape, generator=gen)
    level = torch.rand(6, generator=gen) * 0.5
    noise = torch.randn(latents.shape, generator=gen)
    is_reference = torch.arange(3)[None] < num_reference[:, None]
    expected = flow.add_noise(clean["latents"], noise, torch.where(is_reference, level[:, None], 0.0))
    torch.testing.assert_close(seen["latents"], expected)
    # The predicted frames and every time are untouched: the model still sees tau = 0 on its references.
    assert torch.equal(seen["latents"][~is_reference], clean["latents"][~is_reference])
    assert torch.equal(seen["tau"], clean["tau"]) and torch.equal(tau[:, None].expand(-1, 3)[~is_reference],
                                                                  seen["tau"][~is_reference])
    with pytest.raises(ValueError, match=r"extension.reference_noise.max_level must be in \[0, 1\)"):
        ReferenceNoise(max_level=1.0)


def test_reference_noise_shows_the_model_noised_references_and_returns_the_clean_ones():
    reference = torch.randn(2, 2, 1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(2, 1, 1, 3, 4, 4)
    recorder = ReferenceRecorder()
    out = NoisyReferenceSampler(num_steps=3, cfg_scale=1.0, reference_noise=0.3).sample(
        recorder, reference, 3, noise=noise, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out[:, :2], reference)
    # One draw of reference noise per call, the same at every step; it comes after the frames' noise,
    # which was given here, so it is the generator's first draw.
    expected = 0.7 * reference + 0.3 * torch.randn(reference.shape, generator=torch.Generator().manual_seed(1))
    assert len(recorder.seen) == 3
    for seen in recorder.seen:
        assert torch.allclose(seen, expected.reshape(-1, 1, 3, 4, 4), atol=1e-6)
    clean = ReferenceRecorder()
    FlowEulerSampler(num_steps=2, cfg_scale=1.0).sample(clean, reference, 3, noise=noise)
    assert torch.equal(clean.seen[0], reference.reshape(-1, 1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"reference_noise must be in \[0, 1\)"):
        NoisyReferenceSampler(reference_noise=1.0)
    changed = NoisyReferenceSampler(churn=0.5).replace(reference_noise=0.2)
    assert (type(changed), changed.reference_noise, changed.churn) == (NoisyReferenceSampler, 0.2, 0.5)
    with pytest.raises(ValueError, match="FlowEulerSampler has no setting 'reference_noise'"):
        FlowEulerSampler().replace(reference_noise=0.2)
