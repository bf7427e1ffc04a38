"""Peak signal-to-noise ratio of uint8 frames, per frame."""
from __future__ import annotations

import numpy as np

# Identical frames have infinite PSNR; cap it so averages stay finite (a common convention).
MAX_PSNR_DB = 100.0


def psnr(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) pairs -> PSNR in dB per leading index, shape (...)."""
    if prediction.shape != target.shape:
        raise ValueError(f"psnr needs equal shapes, got {prediction.shape} and {target.shape}")
    diff = prediction.astype(np.float64) - target.astype(np.float64)
    mse = np.mean(diff * diff, axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(255.0 ** 2 / mse)
    return np.minimum(value, MAX_PSNR_DB)
