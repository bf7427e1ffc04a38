"""SSIM (Wang et al. 2004) of uint8 frames, per frame: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

WINDOW, SIGMA, K1, K2, DATA_RANGE = 11, 1.5, 0.01, 0.03, 255.0


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """Normalised 1D Gaussian (size,) float64, centred on the middle tap."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter, VALID: (N, C, H, W) -> (N, C, H - 10, W - 10) for the 11-tap window."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def ssim(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) pairs -> SSIM per leading index, shape (...): mean over the valid map and channels."""
    if prediction.shape != target.shape:
        raise ValueError(f"ssim needs equal shapes, got {prediction.shape} and {target.shape}")
    if prediction.ndim < 3 or min(prediction.shape[-3:-1]) < WINDOW:
        raise ValueError(f"ssim needs (..., H, W, C) frames of at least {WINDOW}x{WINDOW}, got {prediction.shape}")
    lead = prediction.shape[:-3]
    x = rearrange(torch.from_numpy(np.ascontiguousarray(prediction)).double(), "... h w c -> (...) c h w")
    y = rearrange(torch.from_numpy(np.ascontiguousarray(target)).double(), "... h w c -> (...) c h w")
    g = gaussian_window()
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mu_x, mu_y = _blur(x, g), _blur(y, g)
    var_x = _blur(x * x, g) - mu_x * mu_x
    var_y = _blur(y * y, g) - mu_y * mu_y
    cov = _blur(x * y, g) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3)).numpy().reshape(lead)
