"""The one hook through which an experimental idea changes the rectified-flow loss.

`RectifiedFlow.training_loss` draws a batch's times and noise into a `NoisedBatch`, hands it to each extension's
`perturb` in order, runs the network, and adds each extension's `frame_error` to the per-frame velocity error.
The core objective (the paper: rectified flow, MR, action dropout) never needs one; the ideas on the shelf
(`worldmodel/experimental/`, switched on by `extension=<name>`) are built from this class.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from worldmodel.diffusion.draws import Generators


@dataclass(frozen=True)
class NoisedBatch:
    """One training batch between the draws and the forward pass; shapes with B samples, T frames.

    latents: clean z0 (B, T, V, C, H, W); eps: the noise drawn for them, same shape; tau: one time per sample (B,);
    tau_frames: (B, T), 0 on reference frames; is_reference: (B, T) bool; z_tau: the network's input, same shape as
    latents; target: the velocity the loss compares with, same shape. prior / has_prior: each sample's warp prior
    (same shape as latents) and whether it has one (B,) bool, or None when training computes none. training: False
    in validation, where an extension that changes what is learned (not what is seen) should leave the batch alone.
    unmaskable: (B,) bool, samples that must not be masked for MR, or None. logs: scalars the loss reports.
    """

    latents: torch.Tensor
    eps: torch.Tensor
    tau: torch.Tensor
    tau_frames: torch.Tensor
    is_reference: torch.Tensor
    z_tau: torch.Tensor
    target: torch.Tensor
    prior: torch.Tensor | None = None
    has_prior: torch.Tensor | None = None
    training: bool = True
    unmaskable: torch.Tensor | None = None
    logs: dict[str, torch.Tensor] = field(default_factory=dict)

    def but(self, **changes: object) -> "NoisedBatch":
        """A copy with the given fields replaced."""
        return replace(self, **changes)


class ObjectiveExtension:
    """Base of the objective's extensions; each method's default leaves the loss exactly as the core computes it.

    needs_prior: training must compute each clip's warp prior for this extension (`NoisedBatch.prior`).
    exempts_from_masking: `perturb` may mark samples `unmaskable`, so no configuration masks every sample.
    """

    needs_prior: bool = False
    exempts_from_masking: bool = False

    def perturb(self, noised: NoisedBatch, generator: Generators = None) -> NoisedBatch:
        """Change the network's input, times or target; called once per training_loss, before the forward."""
        return noised

    def frame_error(self, err_map: torch.Tensor, velocity: torch.Tensor, noised: NoisedBatch) -> torch.Tensor | None:
        """An extra per-frame error (B, T) added to the velocity MSE, or None.

        err_map (B, T, V, C, H, W): squared velocity errors of one forward pass; velocity: its predicted velocity.
        """
        return None
