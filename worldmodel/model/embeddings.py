"""Sinusoidal features, the temporal position embedding and the per-frame time embedding."""

import math

import torch
from torch import nn


#################################################################################
#                              Sinusoidal Features                              #
#################################################################################

def sinusoidal_features(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Every scalar of x (...) -> dim features [cos(x w_i), sin(x w_i)], w_i = max_period ** (-i / (dim / 2)).

    The same map as the timestep embedding of SGM/Vista, which Vista applies to each action scalar.
    Returns float32 (..., dim).
    """
    if dim % 2:
        raise ValueError(f"sinusoidal features need an even dim, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=x.device) / half)
    args = x.float()[..., None] * freqs  # (..., dim / 2)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (..., dim)


#################################################################################
#                          Temporal Position Embedding                          #
#################################################################################

class TemporalPositionEmbedding(nn.Module):
    """Fixed 1D sin-cos embedding of the frame index, added before temporal self-attention."""

    def __init__(self, max_frames: int, hidden_size: int):
        super().__init__()
        self.max_frames = max_frames
        self.hidden_size = hidden_size

    def forward(self, num_frames: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """num_frames -> float32 (T, D); computed on the fly, so no buffer needs a meta-device init."""
        if num_frames > self.max_frames:
            raise ValueError(
                f"clip has {num_frames} frames but the model was built with max_frames={self.max_frames}")
        return sinusoidal_features(torch.arange(num_frames, device=device), self.hidden_size)


#################################################################################
#                            Per-Frame Time Embedding                           #
#################################################################################

class FrameTimeEmbedding(nn.Module):
    """Embeds the per-frame diffusion time m * tau (tau in [0, 1]) that modulates the temporal blocks."""

    def __init__(self, hidden_size: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(
            nn.Linear(frequency_dim, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    def forward(self, tau: torch.Tensor) -> torch.Tensor:
        """tau (B, T) -> (B, T, D); tau is scaled by 1000 like the SD3 timestep."""
        freqs = sinusoidal_features(tau * 1000.0, self.frequency_dim)  # (B, T, F)
        return self.mlp(freqs.to(self.mlp[0].weight.dtype))  # (B, T, D)
