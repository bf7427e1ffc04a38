"""Abstract latent codec: frames in [-1, 1] <-> latent grids, with chunked video helpers."""

from __future__ import annotations

import abc

import torch
from einops import rearrange
from torch import nn


class LatentCodec(nn.Module, abc.ABC):
    """Maps RGB frames to latents and back; subclasses set the three attributes below."""

    latent_channels: int  # c of the latent grid
    downsample: int  # spatial factor f: latent grid is (H / f, W / f)
    chunk_size: int  # frames per encode/decode call in the video helpers

    # ------------------------------------------------------------------
    # Per-frame interface (subclasses implement)
    # ------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode frames (n, 3, H, W) float in [-1, 1] -> latents (n, c, H/f, W/f)."""

    @abc.abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode latents (n, c, h, w) -> frames (n, 3, h*f, w*f) clamped to [-1, 1]."""

    # ------------------------------------------------------------------
    # Shapes
    # ------------------------------------------------------------------
    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Return (c, H/f, W/f) for frames of size (H, W); raise when not divisible."""
        self.check_size(height, width)
        return self.latent_channels, height // self.downsample, width // self.downsample

    def check_size(self, height: int, width: int) -> None:
        """Raise a ValueError naming the size and the fix when (H, W) is not divisible by f."""
        f = self.downsample
        if height % f or width % f:
            fixed = (max(f, round(height / f) * f), max(f, round(width / f) * f))
            raise ValueError(
                f"{type(self).__name__} needs frame height and width divisible by its downsample "
                f"factor {f}, got {height}x{width}; resize or crop the frames (e.g. to "
                f"{fixed[0]}x{fixed[1]}) in the data config."
            )

    # ------------------------------------------------------------------
    # Video helpers
    # ------------------------------------------------------------------
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Encode video (b, t, v, 3, H, W) -> latents (b, t, v, c, H/f, W/f), chunk by chunk."""
        if video.ndim != 6 or video.shape[3] != 3:
            raise ValueError(f"encode_video expects (b, t, v, 3, H, W), got {tuple(video.shape)}")
        b, t, v = video.shape[:3]
        self.check_size(video.shape[-2], video.shape[-1])
        frames = rearrange(video, "b t v c h w -> (b t v) c h w")
        latents = self._chunked(self.encode, frames)
        return rearrange(latents, "(b t v) c h w -> b t v c h w", b=b, t=t, v=v)

    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode latents (b, t, v, c, h, w) -> video (b, t, v, 3, h*f, w*f), chunk by chunk."""
        if latents.ndim != 6 or latents.shape[3] != self.latent_channels:
            raise ValueError(
                f"decode_video expects (b, t, v, {self.latent_channels}, h, w), got {tuple(latents.shape)}"
            )
        b, t, v = latents.shape[:3]
        flat = rearrange(latents, "b t v c h w -> (b t v) c h w")
        frames = self._chunked(self.decode, flat)
        return rearrange(frames, "(b t v) c h w -> b t v c h w", b=b, t=t, v=v)

    def _chunked(self, fn, x: torch.Tensor) -> torch.Tensor:
        # Peak activation memory is bounded by one chunk, not by the clip length.
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        return torch.cat([fn(part) for part in torch.split(x, self.chunk_size)], dim=0)
