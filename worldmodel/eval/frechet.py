"""Fréchet distances between feature Gaussians: the float64 formula, and FID / FVD as DDP-reducible torchmetrics."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from worldmodel.eval.features import I3DFeatures, InceptionFeatures


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), in float64.

    tr((S1 S2)^(1/2)) is the sum of square roots of the eigenvalues of the symmetric PSD matrix F^T S2 F, with
    S1 = F F^T from S1's eigendecomposition (its nonzero eigenvalues are those of S1 S2); this stays real and
    stable for the rank-deficient covariances of small sample sets (where scipy's sqrtm needs an eps * I retry).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"shape mismatch: mu {mu1.shape} {mu2.shape}, sigma {s1.shape} {s2.shape}")
    s1, s2 = (s1 + s1.T) / 2.0, (s2 + s2.T) / 2.0
    w, v = np.linalg.eigh(s1)
    keep = w > 0
    factor = v[:, keep] * np.sqrt(w[keep])  # S1 = F F^T, so F^T S2 F has the eigenvalues of S1^(1/2) S2 S1^(1/2)
    middle = factor.T @ s2 @ factor  # (r, r), r = rank of S1: small for small sample sets
    eig = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    trace_sqrt = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


class FrechetFeatureDistance(FrechetInceptionDistance):
    """torchmetrics' Fréchet accumulator (sum, outer-product sum, count; DDP "sum") with any feature network."""

    def __init__(self, feature: nn.Module, reset_real_features: bool = True) -> None:
        super().__init__(feature=feature, reset_real_features=reset_real_features)

    def compute(self) -> torch.Tensor:
        """float64 scalar tensor: the Fréchet distance between the real and the fake feature Gaussians."""
        stats = []
        for prefix in ("real", "fake"):
            n = int(getattr(self, f"{prefix}_features_num_samples"))
            if n < 2:
                raise RuntimeError(f"{type(self).__name__} needs at least 2 {prefix} samples, got {n}")
            total = getattr(self, f"{prefix}_features_sum").double().cpu().numpy()
            outer = getattr(self, f"{prefix}_features_cov_sum").double().cpu().numpy()
            mean = total / n
            stats.append((mean, (outer - n * np.outer(mean, mean)) / (n - 1)))
        return torch.tensor(frechet_distance(*stats[0], *stats[1]), dtype=torch.float64)


class FID(FrechetFeatureDistance):
    """FID on Inception-v3 (TF 2015-12-05) pool features; `update(uint8 (N, 3, H, W), real=...)`."""

    def __init__(self, inception_weights: str | Path | None = None, reset_real_features: bool = True) -> None:
        super().__init__(InceptionFeatures(inception_weights), reset_real_features)


class FVD(FrechetFeatureDistance):
    """FVD on I3D Kinetics-400 logits; `update(uint8 (N, T, 3, H, W), real=...)`, T >= 9 (16 in the protocol)."""

    def __init__(self, i3d_weights: str | Path | None = None, reset_real_features: bool = True) -> None:
        super().__init__(I3DFeatures(i3d_weights), reset_real_features)
