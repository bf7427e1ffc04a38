"""Reference degradation: train on reference frames that look like a rollout's own, blurred, faded, noisy frames.

A rollout carries its last generated frames forward as the next chunk's reference frames. A small model's frames
are blurrier, flatter and greyer than real ones (on the quickstart's 60 s drive, at 6 s: 0.31 of the truth's
luma gradient, 0.65 of its contrast, 0.56 of its saturation; BENCHMARKS.md, "Reference degradation"), the next chunk
copies that and adds its own loss, and within a few chunks the video fades to grey. Training only ever shows clean
reference frames, so nothing teaches the network to undo the loss. Here a share of the training samples have their
reference frames degraded in those ways (a Gaussian blur, contrast pulled towards the frame's mean colour,
saturation pulled towards its grey, added noise) while the frames to predict stay the clean truth: the network
learns to map a faded context back to a sharp scene, which makes sharp scenes what a rollout is drawn back to.

The frames are degraded in pixels (decoded, degraded, encoded again), so every kind means the same for every codec
and a latent cache serves as well as frames; it runs before the warp prior is made, so a warp-conditioned model
sees a warp of the degraded frame, as in a rollout. It is our extension (MaskGWM trains on clean references only);
off by default. Measured on the quickstart it did not help: 800 more steps with half the samples degraded left the
60 s drive at 14.09 dB against 16.06 for the same 800 steps without it, and drove the colour to 1.8x the truth's
saturation instead of grey (BENCHMARKS.md, "Reference degradation"). It stays for experiments on larger models.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from worldmodel.codecs import LatentCodec
from worldmodel.diffusion import draws
from worldmodel.diffusion.draws import Generators

# Gaussian taps reach this many sigmas on each side.
KERNEL_REACH = 2.5
# Rec. 601 luma weights: the grey a colour is desaturated towards.
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class ReferenceDegrade:
    """How often and how strongly reference frames are degraded in training.

    Each chosen sample draws one strength per kind, uniformly between 0 and its maximum, shared by all of its
    reference frames (a rollout's carried frames come from one chunk and share its faults): a Gaussian blur of
    `blur` pixels at most (sigma), contrast scaled by a factor in [1 - contrast, 1] around each frame's mean colour,
    saturation scaled by a factor in [1 - saturation, 1] around each pixel's luma, and Gaussian noise of standard
    deviation `noise` at most (frames in [-1, 1]).
    """

    probability: float = 0.0
    blur: float = 3.0
    contrast: float = 0.5
    saturation: float = 0.6
    noise: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"reference_degrade.probability must be in [0, 1] (0: off), got {self.probability}")
        if self.blur < 0:
            raise ValueError(f"reference_degrade.blur must be >= 0 pixels, got {self.blur}")
        for name in ("contrast", "saturation"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"reference_degrade.{name} must be in [0, 1] (the largest share of each frame's "
                                 f"{name} removed), got {getattr(self, name)}")
        if self.noise < 0:
            raise ValueError(f"reference_degrade.noise must be >= 0, got {self.noise}")

    @property
    def enabled(self) -> bool:
        return self.probability > 0 and max(self.blur, self.contrast, self.saturation, self.noise) > 0

    def __call__(self, codec: LatentCodec, latents: torch.Tensor, num_reference: torch.Tensor,
                 generator: Generators = None) -> tuple[torch.Tensor, torch.Tensor]:
        """latents (B, T, V, C, h, w), num_reference (B,) -> (latents with the chosen samples' first num_reference
        frames degraded, chosen (B,) bool). Draws in order: which samples, then the blur, contrast, saturation and
        noise strengths, then a noise seed; all from the sample's generator when there is one per sample."""
        b = latents.shape[0]
        device = latents.device
        chosen = draws.rand((b,), device, generator) < self.probability  # (B,)
        strengths = draws.rand((b, 4), device, generator)  # (B, 4) in [0, 1)
        seeds = (draws.rand((b,), device, generator) * 2**31).long()  # (B,)
        k = num_reference.to(device).long()
        chosen = chosen & (k > 0)
        if not self.enabled or not chosen.any():
            return latents, chosen
        out = latents.clone()
        for i in chosen.nonzero().flatten().tolist():
            frames = codec.decode_video(latents[i:i + 1, :k[i]].float())  # (1, k, V, 3, H, W)
            blur, contrast, saturation, noise = (float(s) for s in strengths[i])
            noise_gen = torch.Generator(device=device).manual_seed(int(seeds[i]))
            frames = degrade_frames(frames, blur * self.blur, 1 - contrast * self.contrast,
                                    1 - saturation * self.saturation, noise * self.noise, noise_gen)
            out[i, :k[i]] = codec.encode_video(frames)[0].to(latents.dtype)
        return out, chosen


def degrade_frames(frames: torch.Tensor, sigma: float, contrast: float, saturation: float, noise: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """frames (..., 3, H, W) in [-1, 1] -> the same frames blurred by `sigma` pixels, with contrast scaled by
    `contrast` around each frame's mean colour, saturation by `saturation` around each pixel's luma, plus Gaussian
    noise of std `noise`, clamped to [-1, 1]; same shape."""
    x = gaussian_blur(frames, sigma)
    x = x.mean(dim=(-2, -1), keepdim=True) + contrast * (x - x.mean(dim=(-2, -1), keepdim=True))
    grey = (x * torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)).sum(dim=-3, keepdim=True)
    x = grey + saturation * (x - grey)
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x.clamp(-1, 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x (..., H, W) blurred over its last two axes by a Gaussian of `sigma` cells (reflected edges); same shape.

    The taps are cut at 2.5 sigma and at the grid's size, and renormalised, so a constant grid stays constant."""
    if sigma <= 0:
        return x
    h, w = x.shape[-2:]
    # Reflect padding needs fewer taps on a side than the grid has cells.
    reach = min(int(KERNEL_REACH * sigma + 0.5), h - 1, w - 1)
    if reach == 0:
        return x
    offsets = torch.arange(-reach, reach + 1, device=x.device, dtype=x.dtype)
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    taps = taps / taps.sum()
    flat = x.reshape(-1, 1, h, w)
    flat = F.conv2d(F.pad(flat, (reach, reach, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, reach, reach), mode="reflect"), taps.view(1, 1, -1, 1))
    return flat.reshape(x.shape)
