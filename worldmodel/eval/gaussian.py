"""Running mean and covariance of feature vectors, the sufficient statistics of a Fréchet distance.

Sums in float64 (sum of x, sum of x x^T, count) merge by addition, so shards of a dataset (batches,
resumed runs, ranks) reduce to the same statistics as one pass; `state_dict` makes them resumable.
"""
from __future__ import annotations

import numpy as np
import torch

from worldmodel.eval.frechet import frechet_distance


class GaussianStats:
    """Accumulates feature vectors (N, D); `mean_cov()` gives the unbiased Gaussian fit."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.total = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)
        self.count = 0

    def add(self, features: torch.Tensor) -> None:
        """features (N, D), any float dtype or device."""
        if features.dim() != 2 or features.shape[1] != self.dim:
            raise ValueError(f"expected features (N, {self.dim}), got {tuple(features.shape)}")
        x = features.detach().to("cpu", torch.float64)
        self.total += x.sum(dim=0)
        self.outer += x.T @ x
        self.count += x.shape[0]

    def merge(self, other: GaussianStats) -> None:
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of {other.dim}-d features into {self.dim}-d ones")
        self.total += other.total
        self.outer += other.outer
        self.count += other.count

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
        mean = self.total / self.count
        cov = (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)
        return mean.numpy(), cov.numpy()

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        return {"dim": self.dim, "total": self.total.clone(), "outer": self.outer.clone(), "count": self.count}

    @classmethod
    def from_state(cls, state: dict) -> GaussianStats:
        stats = cls(int(state["dim"]))
        stats.total, stats.outer, stats.count = state["total"].double(), state["outer"].double(), int(state["count"])
        return stats


def frechet(a: GaussianStats, b: GaussianStats) -> float | None:
    """Fréchet distance between two accumulated sets; None when either has fewer than 2 samples."""
    if a.count < 2 or b.count < 2:
        return None
    return frechet_distance(*a.mean_cov(), *b.mean_cov())
