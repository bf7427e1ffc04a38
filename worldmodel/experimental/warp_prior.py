"""Warp-prior training: some samples start from their warped last reference frame instead of from themselves.

A rollout's warp start (`warp_start=TAU`) begins sampling from the last frame re-rendered along the commanded path
(worldmodel/training/warp_prior.py makes the same warp from the recorded poses). Here a share of the training
samples that have a warp start there too: z_tau = (1 - tau) prior + tau eps at a time drawn uniformly in `tau`,
and the target is the velocity that leads from there to the truth, (z_tau - z0) / tau, so the network learns to
correct the warp instead of meeting it first at rollout time. `extension=warp_prior`; docs/FINDINGS.md has what it
measured. Validation leaves the batch alone, so val/loss stays the plain objective's.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from worldmodel.diffusion import RectifiedFlow, draws
from worldmodel.diffusion.draws import Generators
from worldmodel.diffusion.extension import NoisedBatch, ObjectiveExtension
from worldmodel.diffusion.prediction import MIN_TAU


class WarpPriorStart(ObjectiveExtension):
    """A share `probability` of the samples with a warp prior start from it at a time drawn in `tau` = [lo, hi].

    Prior-started samples are never masked for MR: a hidden token would have to guess the warp's error too.
    """

    needs_prior = True
    exempts_from_masking = True

    def __init__(self, probability: float = 0.5, tau: Sequence[float] = (0.1, 0.5)) -> None:
        if not 0.0 < probability <= 1.0:
            raise ValueError(f"extension.warp_prior.probability must be in (0, 1] (leave the extension out for "
                             f"none), got {probability}")
        # Below MIN_TAU the velocity of a clean-frame prediction is clamped, and the prior's target would not be.
        pair = [tau] if isinstance(tau, (int, float, str)) else list(tau)
        if len(pair) != 2 or not MIN_TAU <= float(pair[0]) <= float(pair[1]) <= 1.0:
            raise ValueError(f"extension.warp_prior.tau must be [lo, hi] with {MIN_TAU} <= lo <= hi <= 1 (the "
                             f"times a warp start is sampled from, e.g. [0.1, 0.5]), got {tau}")
        self.probability = float(probability)
        self.tau = (float(pair[0]), float(pair[1]))

    def perturb(self, noised: NoisedBatch, generator: Generators = None) -> NoisedBatch:
        if not noised.training or noised.prior is None:
            return noised
        latents, is_reference = noised.latents, noised.is_reference
        b, device = latents.shape[0], latents.device
        chosen = (draws.rand((b,), device, generator) < self.probability) & noised.has_prior  # (B,)
        lo, hi = self.tau
        tau = torch.where(chosen, lo + (hi - lo) * draws.rand((b,), device, generator), noised.tau)  # (B,)
        tau_frames = torch.where(is_reference, torch.zeros_like(tau[:, None]), tau[:, None])  # (B, T)
        starts = (chosen[:, None] & ~is_reference).reshape(b, -1, *([1] * (latents.dim() - 2)))  # frames started
        from_prior = RectifiedFlow.add_noise(noised.prior.to(latents.dtype), noised.eps, tau_frames)
        z_tau = torch.where(starts, from_prior, noised.z_tau)
        # The velocity that leads from z_tau to the truth in the remaining time tau: (z_tau - z0) / tau.
        safe_tau = tau_frames.clamp(min=MIN_TAU).reshape(starts.shape).to(latents.dtype)
        target = torch.where(starts, (z_tau - latents) / safe_tau, noised.target)
        unmaskable = chosen if noised.unmaskable is None else noised.unmaskable | chosen
        logs = {**noised.logs, "warp_prior_fraction": chosen.float().mean().detach()}
        return noised.but(tau=tau, tau_frames=tau_frames, z_tau=z_tau, target=target, unmaskable=unmaskable,
                          logs=logs)
