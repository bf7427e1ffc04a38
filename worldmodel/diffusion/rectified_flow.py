"""Rectified-flow training objective: noise, timestep sampling, action dropout and the velocity loss."""

import torch
from torch import nn

from worldmodel.model.action_embedding import ACTION_GROUP_SIZES

TIME_SAMPLINGS = ("logit_normal", "uniform")


#################################################################################
#                                 Rectified Flow                                #
#################################################################################

class RectifiedFlow:
    """Straight path z_tau = (1 - tau) z0 + tau eps; the network regresses the velocity eps - z0.

    The first `num_reference` frames of a clip stay clean (tau = 0, flagged as reference); the other
    frames share one tau per sample. Each action group is dropped independently with probability
    `action_dropout` (classifier-free guidance), on top of the groups the dataset marks invalid.
    """

    def __init__(self, time_sampling: str = "logit_normal", logit_mean: float = 0.0, logit_std: float = 1.0,
                 action_dropout: float = 0.15, loss_on_reference: bool = False):
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")
        if not 0.0 <= action_dropout <= 1.0:
            raise ValueError(f"action_dropout must be in [0, 1], got {action_dropout}")
        self.time_sampling = time_sampling
        self.logit_mean = logit_mean
        self.logit_std = logit_std
        self.action_dropout = action_dropout
        self.loss_on_reference = loss_on_reference

    def sample_tau(self, batch_size: int, device: torch.device | str = "cpu",
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """One diffusion time per sample: (B,) in (0, 1); logit-normal is SD3's default."""
        if self.time_sampling == "uniform":
            return torch.rand(batch_size, device=device, generator=generator)
        logits = torch.randn(batch_size, device=device, generator=generator) * self.logit_std + self.logit_mean
        return torch.sigmoid(logits)

    @staticmethod
    def add_noise(z0: torch.Tensor, eps: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """z0, eps (B, T, ...), tau (B, T) -> z_tau = (1 - tau) z0 + tau eps, same shape as z0."""
        tau = tau.reshape(*tau.shape, *([1] * (z0.dim() - tau.dim()))).to(z0.dtype)  # (B, T, 1, ...)
        return (1 - tau) * z0 + tau * eps

    @staticmethod
    def target(z0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The velocity d z_tau / d tau = eps - z0."""
        return eps - z0

    def drop_actions(self, action_valid: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, G) bool -> (B, G) bool with each group independently dropped with p = action_dropout."""
        keep = torch.rand(action_valid.shape, device=action_valid.device, generator=generator) >= self.action_dropout
        return action_valid.bool() & keep

    def training_loss(self, model: nn.Module, latents: torch.Tensor, num_reference: torch.Tensor,
                      actions: torch.Tensor | None = None, action_valid: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """MSE between model velocity and eps - z0 on the predicted frames.

        latents (B, T, V, C, H, W) clean z0, num_reference (B,) long, actions (B, 19) or None,
        action_valid (B, 5) bool or None (all valid when actions are given) -> (loss, logs).
        """
        b, t = latents.shape[:2]
        device = latents.device
        is_reference = torch.arange(t, device=device)[None] < num_reference.to(device)[:, None]  # (B, T)
        tau = self.sample_tau(b, device, generator)  # (B,)
        tau_frames = torch.where(is_reference, torch.zeros_like(tau[:, None]), tau[:, None])  # (B, T)

        eps = torch.randn(latents.shape, device=device, dtype=latents.dtype, generator=generator)
        z_tau = self.add_noise(latents, eps, tau_frames)  # (B, T, V, C, H, W)

        valid = None
        if actions is not None:
            if action_valid is None:
                action_valid = torch.ones(b, len(ACTION_GROUP_SIZES), dtype=torch.bool, device=device)
            valid = self.drop_actions(action_valid.to(device), generator)  # (B, G)

        pred = model(z_tau, tau_frames, actions=actions, action_valid=valid, is_reference=is_reference)
        err = (pred.float() - self.target(latents, eps).float()).square().mean(dim=(2, 3, 4, 5))  # (B, T)
        weight = torch.ones_like(err) if self.loss_on_reference else (~is_reference).to(err.dtype)  # (B, T)
        loss = (err * weight).sum() / weight.sum().clamp(min=1.0)

        logs = {
            "loss": loss.detach(),
            "tau_mean": tau.mean().detach(),
            "reference_frames": is_reference.float().sum(dim=1).mean().detach(),
        }
        if valid is not None:
            logs["action_keep_rate"] = valid.float().mean().detach()
        return loss, logs
