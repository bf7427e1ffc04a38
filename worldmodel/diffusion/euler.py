"""Flow-matching Euler sampler with per-frame diffusion time and classifier-free guidance over actions."""

import torch
from torch import nn
from tqdm.auto import tqdm

from worldmodel.diffusion.prediction import output_to_velocity, prediction_of
from worldmodel.model.action_embedding import ACTION_GROUP_SIZES


#################################################################################
#                               Flow Euler Sampler                              #
#################################################################################

class FlowEulerSampler:
    """Integrates dz/dtau = v(z, tau) from tau = 1 (noise) to tau = 0 on the new frames; references stay clean.

    The schedule is `num_steps` equal steps of linspace(1, 0), each warped like SD3's scheduler:
    tau' = shift * tau / (1 + (shift - 1) * tau) (shift > 1 spends more steps at high noise).
    With actions, every step runs the conditional and the unconditional (all action groups invalid)
    batch in one forward and uses uncond + cfg_scale * (cond - uncond).
    Mask reconstruction is training-only: the sampler never passes a mask plan, so the model always
    runs on the full token grid.
    """

    def __init__(self, num_steps: int = 30, cfg_scale: float = 4.0, shift: float = 1.0):
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if shift <= 0:
            raise ValueError(f"shift must be > 0, got {shift}")
        self.num_steps = num_steps
        self.cfg_scale = cfg_scale
        self.shift = shift

    def schedule(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(num_steps + 1,) diffusion times from 1 down to 0."""
        tau = torch.linspace(1.0, 0.0, self.num_steps + 1, device=device, dtype=torch.float64)
        return (self.shift * tau / (1 + (self.shift - 1) * tau)).float()

    @torch.no_grad()
    def sample(self, model: nn.Module, reference: torch.Tensor, num_frames: int,
               actions: torch.Tensor | None = None, action_valid: torch.Tensor | None = None,
               generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
               progress: bool = False) -> torch.Tensor:
        """reference (B, K, V, C, H, W) clean latents, K >= 0 -> (B, num_frames, V, C, H, W).

        actions (B, 19) or None, action_valid (B, 5) bool or None (all valid when actions are given),
        noise (B, num_frames - K, V, C, H, W) or None (drawn with `generator`).
        """
        b, k, v, c, h, w = reference.shape
        num_new = num_frames - k
        if num_new < 1:
            raise ValueError(f"num_frames ({num_frames}) must exceed the {k} reference frames")
        device, dtype = reference.device, reference.dtype
        new_shape = (b, num_new, v, c, h, w)
        if noise is None:
            noise = torch.randn(new_shape, device=device, dtype=dtype, generator=generator)
        elif tuple(noise.shape) != new_shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {new_shape}")

        is_reference = (torch.arange(num_frames, device=device) < k)[None].expand(b, -1)  # (B, T)
        if actions is not None and action_valid is None:
            action_valid = torch.ones(b, len(ACTION_GROUP_SIZES), dtype=torch.bool, device=device)
        use_cfg = self.cfg_scale != 1.0 and actions is not None and bool(action_valid.any())
        if use_cfg:
            batch_actions = torch.cat([actions, actions])  # (2B, S)
            batch_valid = torch.cat([action_valid.bool(), torch.zeros_like(action_valid, dtype=torch.bool)])
            batch_reference = torch.cat([is_reference, is_reference])  # (2B, T)

        prediction = prediction_of(model)
        z = noise  # (B, T - K, V, C, H, W)
        taus = self.schedule(device)
        for i in tqdm(range(self.num_steps), disable=not progress, desc="sampling"):
            tau, tau_next = taus[i], taus[i + 1]
            latents = torch.cat([reference, z], dim=1)  # (B, T, V, C, H, W)
            tau_frames = torch.where(is_reference, 0.0, tau)  # (B, T) float32
            if use_cfg:
                out = model(torch.cat([latents, latents]), torch.cat([tau_frames, tau_frames]),
                            actions=batch_actions, action_valid=batch_valid, is_reference=batch_reference)
                cond, uncond = output_to_velocity(out, torch.cat([latents, latents]),
                                                  torch.cat([tau_frames, tau_frames]), prediction).chunk(2)
                velocity = uncond + self.cfg_scale * (cond - uncond)  # (B, T, V, C, H, W)
            else:
                out = model(latents, tau_frames, actions=actions, action_valid=action_valid,
                            is_reference=is_reference)
                velocity = output_to_velocity(out, latents, tau_frames, prediction)
            z = z + (tau_next - tau).to(dtype) * velocity[:, k:]
        return torch.cat([reference, z], dim=1)  # (B, T, V, C, H, W)
