"""Conversions between model tensors (float, [-1, 1], channels-first) and uint8 images."""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """Float tensor (..., 3, H, W) in [-1, 1] -> numpy uint8 (..., H, W, 3); values are clamped."""
    if video.ndim < 3 or video.shape[-3] != 3:
        raise ValueError(f"to_uint8 expects (..., 3, H, W), got {tuple(video.shape)}")
    if not video.is_floating_point():
        raise TypeError(f"to_uint8 expects a float tensor in [-1, 1], got {video.dtype}")
    x = ((video.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return rearrange(x, "... c h w -> ... h w c").contiguous().numpy()


def from_uint8(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 tensor (..., 3, H, W) in [-1, 1]."""
    x = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames
    if x.dtype != torch.uint8:
        raise TypeError(f"from_uint8 expects uint8 frames, got {x.dtype}")
    if x.ndim < 3 or x.shape[-1] != 3:
        raise ValueError(f"from_uint8 expects (..., H, W, 3), got {tuple(x.shape)}")
    x = x.float() / 127.5 - 1.0
    return rearrange(x, "... h w c -> ... c h w").contiguous()
