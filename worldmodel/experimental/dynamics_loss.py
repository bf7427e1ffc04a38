"""Vista's dynamics enhancement loss (Gao et al. 2024): weight the velocity error towards where motion is wrong.

`extension=dynamics_loss`; `extension.dynamics_loss.weight` scales the added term (docs/FINDINGS.md).
"""
from __future__ import annotations

import torch

from worldmodel.diffusion.extension import NoisedBatch, ObjectiveExtension


class DynamicsLoss(ObjectiveExtension):
    """Adds `weight` * `dynamics_error` to every frame's velocity error."""

    def __init__(self, weight: float = 1.0) -> None:
        if weight <= 0:
            raise ValueError(f"extension.dynamics_loss.weight must be > 0 (leave the extension out for none), "
                             f"got {weight}")
        self.weight = float(weight)

    def frame_error(self, err_map: torch.Tensor, velocity: torch.Tensor, noised: NoisedBatch) -> torch.Tensor:
        return self.weight * dynamics_error(err_map, velocity, noised.z_tau, noised.latents, noised.tau_frames,
                                            noised.is_reference)


def dynamics_error(err_map: torch.Tensor, velocity: torch.Tensor, z_tau: torch.Tensor, z0: torch.Tensor,
                   tau: torch.Tensor, is_reference: torch.Tensor) -> torch.Tensor:
    """Per-frame error (B, T) re-weighted towards where the predicted frame-to-frame change is wrong.

    err_map (B, T, V, C, H, W) squared velocity errors; the weight of a position in frame i is
    ||(x_i - x_{i-1}) - (x0_i - x0_{i-1})||^2 over channels, x the clean-frame estimate (the truth on
    reference frames), without gradient and scaled to mean 1 per frame; frame 0 gets weight 0.
    """
    t4 = tau[..., None, None, None, None].float()
    # (x_i - x_{i-1}) - (x0_i - x0_{i-1}) is the frame-to-frame change of the estimate's error x - x0.
    miss = (z_tau.float() - t4 * velocity.float()).detach() - z0.float()  # (B, T, V, C, H, W)
    miss = torch.where(is_reference[..., None, None, None, None], torch.zeros_like(miss), miss)
    wrong = miss.diff(dim=1).square().sum(dim=3, keepdim=True)  # (B, T-1, V, 1, H, W)
    wrong = wrong / wrong.mean(dim=(2, 3, 4, 5), keepdim=True).clamp(min=1e-8)
    weighted = (wrong * err_map[:, 1:].float()).mean(dim=(2, 3, 4, 5))  # (B, T-1)
    return torch.cat([torch.zeros_like(weighted[:, :1]), weighted], dim=1)
