"""Parameter-free DCT codec: an orthonormal colour rotation and a block DCT, keeping low frequencies.

Like JPEG without quantisation tables: each f x f block of each colour channel goes through an
orthonormal 2-D DCT-II, and only the lowest-frequency coefficients are kept (more for luma than
for the two colour-difference channels, where the eye and driving scenes carry less detail).
The kept coefficients are the latent channels. Because both transforms are orthonormal, encode
after decode is the identity on latents, and decode after encode is the orthogonal projection of
the image onto the kept frequencies: the best reconstruction any codec of that size can make
from these bases.

Why it exists: a space-to-depth pixel codec gives a tiny transformer tokens larger than its
hidden size (2x2 patches x 48 channels = 192 values for a 96-wide model), so the network cannot
carry a frame through its first layer; 16 DCT channels make a 64-value token and drop the
high-frequency detail that a CPU-sized model could not predict anyway.
"""
from __future__ import annotations

import math

import torch
from einops import rearrange

from worldmodel.codecs.base import LatentCodec

# Rows: luma and two colour differences, an orthonormal rotation of RGB.
COLOUR_BASIS = torch.tensor([
    [1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
    [1 / math.sqrt(2), -1 / math.sqrt(2), 0.0],
    [1 / math.sqrt(6), 1 / math.sqrt(6), -2 / math.sqrt(6)],
])


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix (n, n): row k is the k-th cosine basis vector."""
    i = torch.arange(n, dtype=torch.float64)
    k = i[:, None]
    m = torch.cos(math.pi * (2 * i[None] + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def frequency_order(n: int) -> list[tuple[int, int]]:
    """(u, v) pairs of an n x n block from low to high frequency (by u + v, then u), as in JPEG's zigzag."""
    return sorted(((u, v) for u in range(n) for v in range(n)), key=lambda p: (p[0] + p[1], p[0]))


class DCTCodec(LatentCodec):
    """Block-DCT codec: `luma` + 2 * `chroma` latent channels at 1/`block` resolution."""

    def __init__(self, block: int = 4, luma: int = 10, chroma: int = 3, scale: float = 1.0,
                 chunk_size: int = 64) -> None:
        super().__init__()
        if block < 1 or not 1 <= luma <= block * block or not 0 <= chroma <= block * block:
            raise ValueError(f"DCTCodec needs block >= 1 and 1 <= luma, chroma <= block**2 = {block * block}, "
                             f"got block={block}, luma={luma}, chroma={chroma}")
        self.block, self.luma, self.chroma, self.scale = int(block), int(luma), int(chroma), float(scale)
        self.downsample = self.block
        self.latent_channels = self.luma + 2 * self.chroma
        self.chunk_size = int(chunk_size)
        d = dct_matrix(self.block)
        basis2d = torch.einsum("ui,vj->uvij", d, d).reshape(self.block**2, self.block**2)  # (u v), (i j)
        order = [u * self.block + v for u, v in frequency_order(self.block)]
        # Rows of `basis`: the kept (colour, frequency) pairs; columns: (colour, pixel in block).
        rows = []
        for colour, keep in enumerate((self.luma, self.chroma, self.chroma)):
            for index in order[:keep]:
                rows.append(torch.kron(COLOUR_BASIS[colour].double(), basis2d[index]))
        self.register_buffer("basis", torch.stack(rows).float(), persistent=False)  # (C, 3 * f * f)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (n, 3, H, W) in [-1, 1] -> latents (n, C, H/f, W/f)."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"DCTCodec.encode expects (n, 3, H, W), got {tuple(frames.shape)}")
        self.check_size(frames.shape[-2], frames.shape[-1])
        f = self.block
        blocks = rearrange(frames.float(), "n c (h i) (w j) -> n h w (c i j)", i=f, j=f)  # (n, h, w, 3 f f)
        latents = blocks @ self.basis.T  # (n, h, w, C)
        latents = rearrange(latents, "n h w c -> n c h w")
        return latents * self.scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (n, C, h, w) -> frames (n, 3, h*f, w*f) clamped to [-1, 1]."""
        if latents.ndim != 4 or latents.shape[1] != self.latent_channels:
            raise ValueError(f"DCTCodec.decode expects (n, {self.latent_channels}, h, w), got {tuple(latents.shape)}")
        f = self.block
        coefficients = latents.float() / self.scale
        blocks = rearrange(coefficients, "n c h w -> n h w c") @ self.basis  # (n, h, w, 3 f f)
        return rearrange(blocks, "n h w (c i j) -> n c (h i) (w j)", c=3, i=f, j=f).clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        # The latent cache keys on this description: caches written with other settings must not match.
        return f"block={self.block}, luma={self.luma}, chroma={self.chroma}, scale={self.scale}"
