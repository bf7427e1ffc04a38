"""Context-frame noise augmentation (SVD, GameNGen): the model learns from, and samples with, noised references.

A rollout carries its own imperfect frames forward as the next chunk's references; noising the references in
training (the model still sees them at tau = 0) is meant to make it robust to that. `extension=reference_noise`
turns on both halves: `ReferenceNoise` in the objective (a level drawn uniformly in [0, max_level] per sample)
and `NoisyReferenceSampler`, which shows the model its references noised to `reference_noise` (rollout's
`reference_noise=` overrides it). docs/FINDINGS.md has what it measured.
"""
from __future__ import annotations

import torch

from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow, draws
from worldmodel.diffusion.draws import Generators
from worldmodel.diffusion.euler import gaussian
from worldmodel.diffusion.extension import NoisedBatch, ObjectiveExtension


def _check_level(name: str, value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (0: clean reference frames), got {value}")
    return float(value)


class ReferenceNoise(ObjectiveExtension):
    """Noise each sample's reference frames to a level drawn uniformly in [0, max_level] (also in validation,
    where the model sees what it will sample with)."""

    def __init__(self, max_level: float = 0.5) -> None:
        self.max_level = _check_level("extension.reference_noise.max_level", max_level)

    def perturb(self, noised: NoisedBatch, generator: Generators = None) -> NoisedBatch:
        latents, is_reference = noised.latents, noised.is_reference
        level = draws.rand((latents.shape[0],), latents.device, generator) * self.max_level  # (B,)
        ref_level = torch.where(is_reference, level[:, None], torch.zeros_like(noised.tau_frames))  # (B, T)
        noise = draws.randn(latents.shape, latents.device, latents.dtype, generator)
        return noised.but(z_tau=RectifiedFlow.add_noise(noised.z_tau, noise, ref_level))


class NoisyReferenceSampler(FlowEulerSampler):
    """The Euler sampler, showing the model its reference frames as (1 - r) ref + r n, r = `reference_noise`, with
    one draw of n per call (after the new frames' noise)."""

    def __init__(self, num_steps: int = 30, cfg_scale: float = 4.0, shift: float = 1.0, churn: float = 0.0,
                 reference_noise: float = 0.0) -> None:
        super().__init__(num_steps, cfg_scale, shift, churn)
        self.reference_noise = _check_level("reference_noise", reference_noise)

    def settings(self) -> dict[str, float]:
        return {**super().settings(), "reference_noise": self.reference_noise}

    def model_reference(self, reference: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        if self.reference_noise == 0.0:
            return reference
        b, k = reference.shape[:2]
        noise = gaussian(tuple(reference.shape), generator, reference.device, reference.dtype)
        level = torch.full((b, k), self.reference_noise, device=reference.device)  # (B, K): the training path's noise
        return RectifiedFlow.add_noise(reference, noise, level)
