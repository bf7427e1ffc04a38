"""Flow-matching Euler sampler with per-frame diffusion time and classifier-free guidance over actions."""

from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from worldmodel.diffusion.draws import Generators
from worldmodel.diffusion.prediction import output_to_velocity, prediction_of, sigma_data_of
from worldmodel.diffusion.rectified_flow import RectifiedFlow
from worldmodel.model.action_embedding import ACTION_GROUP_SIZES


def gaussian(shape: tuple[int, ...], generator: torch.Generator | Sequence[torch.Generator] | None,
             device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal noise of `shape`; with one generator per batch item, item i comes from generator i alone,
    so a sample's noise does not depend on its batch mates."""
    if not isinstance(generator, Sequence):
        return torch.randn(shape, device=device, dtype=dtype, generator=generator)
    if len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
    return torch.stack([torch.randn(shape[1:], generator=g, device=g.device) for g in generator]).to(device, dtype)


#################################################################################
#                               Flow Euler Sampler                              #
#################################################################################

class FlowEulerSampler:
    """Integrates dz/dtau = v(z, tau) from tau = 1 (noise) to tau = 0 on the new frames; references stay clean.

    The schedule is `num_steps` equal steps of linspace(1, 0), each warped like SD3's scheduler:
    tau' = shift * tau / (1 + (shift - 1) * tau) (shift > 1 spends more steps at high noise).
    With actions, every step runs the conditional and the unconditional (all action groups invalid)
    batch in one forward and uses uncond + cfg_scale * (cond - uncond).
    `churn` in [0, 1] re-draws part of the noise at every step (0: the deterministic Euler ODE step).
    With clean-frame estimate x0 = z - tau v and noise estimate e = z + (1 - tau) v, a step goes to
    (1 - tau') x0 + tau' (sqrt(1 - churn^2) e + churn n), n fresh Gaussian noise; churn = 0 gives exactly
    z + (tau' - tau) v. Why: a small model's errors in x0 also land in e, and the ODE feeds them back
    step after step as if they were noise; fresh noise keeps every step's input Gaussian-noised as in
    training, so the errors do not compound.
    `model_reference` is the one hook of a subclass (worldmodel/experimental/reference_noise.py): what the model
    sees of the reference frames; the returned references are always the clean ones.
    `start` (a first guess of the new frames) with `start_tau` < 1 begins the integration at start_tau from
    (1 - start_tau) start + start_tau noise instead of from pure noise at tau = 1 (SDEdit): the schedule's steps
    above start_tau are skipped, so the guess fixes the coarse layout and the model draws the rest.
    `warp` (new-frame latents shaped like noise) is handed to a model built with `warp_condition` as every new
    frame's warp (`MaskGWM.embed_warp`), in the conditional and the unconditional pass alike: guidance is over
    the actions, and the warp is part of the picture's input as the reference frames are.
    Mask reconstruction is training-only: the sampler never passes a mask plan, so the model always
    runs on the full token grid.
    """

    def __init__(self, num_steps: int = 30, cfg_scale: float = 4.0, shift: float = 1.0, churn: float = 0.0):
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if shift <= 0:
            raise ValueError(f"shift must be > 0, got {shift}")
        if not 0.0 <= churn <= 1.0:
            raise ValueError(f"churn must be in [0, 1] (0: deterministic Euler), got {churn}")
        self.num_steps = int(num_steps)
        self.cfg_scale = float(cfg_scale)
        self.shift = float(shift)
        self.churn = float(churn)

    def settings(self) -> dict[str, float]:
        """The constructor's arguments as this sampler holds them."""
        return dict(num_steps=self.num_steps, cfg_scale=self.cfg_scale, shift=self.shift, churn=self.churn)

    def replace(self, **changes: float) -> "FlowEulerSampler":
        """A new sampler with the given settings changed, validated as at construction."""
        settings = self.settings()
        unknown = sorted(set(changes) - set(settings))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no setting {unknown[0]!r}; settings: {sorted(settings)}")
        return type(self)(**{**settings, **changes})

    def model_reference(self, reference: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        """What the model sees of the clean reference latents (B, K, V, C, H, W): here, themselves."""
        return reference

    def schedule(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(num_steps + 1,) diffusion times from 1 down to 0."""
        tau = torch.linspace(1.0, 0.0, self.num_steps + 1, device=device, dtype=torch.float64)
        return (self.shift * tau / (1 + (self.shift - 1) * tau)).float()

    def visited(self, start_tau: float = 1.0, device: torch.device | str = "cpu") -> torch.Tensor:
        """The diffusion times a `sample` call from `start_tau` steps through, ending at 0: the whole schedule
        from 1, else start_tau followed by the schedule's times below it (the steps above are skipped)."""
        if not 0.0 < start_tau <= 1.0:
            raise ValueError(f"start_tau must be in (0, 1] (1: from pure noise), got {start_tau}")
        taus = self.schedule(device)
        if start_tau >= 1.0:
            return taus
        return torch.cat([taus.new_tensor([start_tau]), taus[taus < start_tau]])

    def evaluations(self, start_tau: float = 1.0) -> int:
        """Model evaluations one `sample` call runs from `start_tau`. A warp start skips the schedule's steps
        above it, so a 10-step schedule from tau 0.2 runs only 2 (the denoising budget a warp start really
        gets; guidance doubles the batch, not this count)."""
        return len(self.visited(start_tau)) - 1

    @torch.no_grad()
    def sample(self, model: nn.Module, reference: torch.Tensor, num_frames: int,
               actions: torch.Tensor | None = None, action_valid: torch.Tensor | None = None,
               generator: torch.Generator | Sequence[torch.Generator] | None = None,
               noise: torch.Tensor | None = None,
               start: torch.Tensor | None = None, start_tau: float = 1.0,
               warp: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
        """reference (B, K, V, C, H, W) clean latents, K >= 0 -> (B, num_frames, V, C, H, W).

        actions (B, 19) or None, action_valid (B, 5) bool or None (all valid when actions are given),
        noise (B, num_frames - K, V, C, H, W) or None (drawn with `generator`); `generator` is one generator
        or one per batch item, and also draws the reference noise (after the frames' noise) and the fresh
        noise of `churn`. start: None, or latents shaped like noise that the integration begins from at
        `start_tau` in (0, 1]. warp: None, or latents shaped like noise for a warp-conditioned model.
        """
        b, k, v, c, h, w = reference.shape
        num_new = num_frames - k
        if num_new < 1:
            raise ValueError(f"num_frames ({num_frames}) must exceed the {k} reference frames")
        device, dtype = reference.device, reference.dtype
        new_shape = (b, num_new, v, c, h, w)
        if noise is None:
            noise = gaussian(new_shape, generator, device, dtype)
        elif tuple(noise.shape) != new_shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {new_shape}")
        if not 0.0 < start_tau <= 1.0:
            raise ValueError(f"start_tau must be in (0, 1] (1: from pure noise), got {start_tau}")
        if start is not None and tuple(start.shape) != new_shape:
            raise ValueError(f"start has shape {tuple(start.shape)}, expected {new_shape}")
        if warp is not None and tuple(warp.shape) != new_shape:
            raise ValueError(f"warp has shape {tuple(warp.shape)}, expected {new_shape}")

        is_reference = (torch.arange(num_frames, device=device) < k)[None].expand(b, -1)  # (B, T)
        if actions is not None and action_valid is None:
            action_valid = torch.ones(b, len(ACTION_GROUP_SIZES), dtype=torch.bool, device=device)
        # With no valid action group the conditional and unconditional predictions are the same and guidance is
        # skipped. The check reads the mask only where it is on the host already: reading a GPU tensor would make
        # the host wait for the device at every chunk, and guiding with identical halves gives the same result.
        use_cfg = self.cfg_scale != 1.0 and actions is not None and (
            action_valid.device.type != "cpu" or bool(action_valid.any()))
        if use_cfg:
            batch_actions = torch.cat([actions, actions])  # (2B, S)
            batch_valid = torch.cat([action_valid.bool(), torch.zeros_like(action_valid, dtype=torch.bool)])
            batch_reference = torch.cat([is_reference, is_reference])  # (2B, T)

        prediction, sigma_data = prediction_of(model), sigma_data_of(model)
        conditioning = {}
        if warp is not None:
            full_warp = torch.cat([torch.zeros_like(reference), warp.to(dtype)], dim=1)  # (B, T, V, C, H, W)
            conditioning = {"warp": full_warp, "warp_valid": ~is_reference}
            if use_cfg:
                conditioning = {name: torch.cat([value, value]) for name, value in conditioning.items()}
        clean_reference = reference
        if k > 0:
            reference = self.model_reference(reference, generator)
        z = noise  # (B, T - K, V, C, H, W)
        # The times as Python floats: reading them off a GPU tensor at every step would sync with the host.
        taus = self.visited(start_tau if start is not None else 1.0).tolist()
        if start is not None and start_tau < 1.0:
            z = RectifiedFlow.add_noise(start.to(dtype), noise, torch.full((b, num_new), start_tau, device=device))
        for i in tqdm(range(len(taus) - 1), disable=not progress, desc="sampling"):
            tau, tau_next = taus[i], taus[i + 1]
            latents = torch.cat([reference, z], dim=1)  # (B, T, V, C, H, W)
            tau_frames = torch.where(is_reference, 0.0, tau)  # (B, T) float32
            if use_cfg:
                out = model(torch.cat([latents, latents]), torch.cat([tau_frames, tau_frames]),
                            actions=batch_actions, action_valid=batch_valid, is_reference=batch_reference,
                            **conditioning)
                cond, uncond = output_to_velocity(out, torch.cat([latents, latents]),
                                                  torch.cat([tau_frames, tau_frames]), prediction, sigma_data).chunk(2)
                velocity = uncond + self.cfg_scale * (cond - uncond)  # (B, T, V, C, H, W) float32
            else:
                out = model(latents, tau_frames, actions=actions, action_valid=action_valid,
                            is_reference=is_reference, **conditioning)
                velocity = output_to_velocity(out, latents, tau_frames, prediction, sigma_data)
            z = self._step(z, velocity[:, k:], tau, tau_next, generator)
        return torch.cat([clean_reference, z], dim=1)  # (B, T, V, C, H, W)

    def _step(self, z: torch.Tensor, velocity: torch.Tensor, tau: float, tau_next: float,
              generator: torch.Generator | Sequence[torch.Generator] | None) -> torch.Tensor:
        """One step tau -> tau_next of the new frames z (B, N, V, C, H, W) given their velocity, in float32 (a
        bfloat16 z would round away steps smaller than 1/256 of its value), returned in z's dtype."""
        dtype, z, velocity = z.dtype, z.float(), velocity.float()
        if self.churn == 0.0 or tau_next == 0.0:
            return (z + (tau_next - tau) * velocity).to(dtype)
        clean = z - tau * velocity
        noise = z + (1 - tau) * velocity
        fresh = gaussian(tuple(z.shape), generator, z.device, dtype).float()
        mixed = (1 - self.churn**2) ** 0.5 * noise + self.churn * fresh
        return ((1 - tau_next) * clean + tau_next * mixed).to(dtype)
