"""Parameter-free pixel codec: space-to-depth with an exact inverse."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from worldmodel.codecs.base import LatentCodec


class PixelCodec(LatentCodec):
    """Space-to-depth codec: each f x f pixel patch becomes 3 * f**2 latent channels."""

    def __init__(self, factor: int = 4, scale: float = 1.0, chunk_size: int = 64) -> None:
        """`scale` multiplies latents on encode (divides on decode).

        Frames in [-1, 1] of natural or procedural images have a standard deviation well below
        one; the diffusion objective mixes latents with unit-variance noise, so a scale that
        brings latents near unit variance keeps the signal-to-noise schedule meaningful.
        """
        super().__init__()
        if factor < 1:
            raise ValueError(f"PixelCodec factor must be >= 1, got {factor}")
        if scale == 0:
            raise ValueError("PixelCodec scale must be non-zero (decode divides by it)")
        self.factor = int(factor)
        self.scale = float(scale)
        self.downsample = self.factor
        self.latent_channels = 3 * self.factor**2
        self.chunk_size = int(chunk_size)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (n, 3, H, W) in [-1, 1] -> latents (n, 3*f*f, H/f, W/f)."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"PixelCodec.encode expects (n, 3, H, W), got {tuple(frames.shape)}")
        self.check_size(frames.shape[-2], frames.shape[-1])
        return F.pixel_unshuffle(frames, self.factor) * self.scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (n, 3*f*f, h, w) -> frames (n, 3, h*f, w*f) clamped to [-1, 1]."""
        if latents.ndim != 4 or latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"PixelCodec.decode expects (n, {self.latent_channels}, h, w), got {tuple(latents.shape)}"
            )
        return F.pixel_shuffle(latents / self.scale, self.factor).clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, scale={self.scale}, chunk_size={self.chunk_size}"
