"""Fréchet distance against hand computations, and the metric's streaming accumulation."""
import numpy as np
import pytest
import scipy.linalg

from worldmodel.eval.frechet import frechet_distance


def test_diagonal_gaussians_match_the_closed_form() -> None:
    mu1, mu2 = np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, 5.0])
    a, b = np.array([4.0, 1.0, 9.0]), np.array([1.0, 1.0, 4.0])
    # Diagonal covariances commute: d^2 = |dmu|^2 + sum (sqrt(a) - sqrt(b))^2 = (1 + 0 + 4) + (1 + 0 + 1) = 7.
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(7.0, abs=1e-12)


def test_full_covariances_match_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = x @ x.T + np.eye(5), y @ y.T + 0.5 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
                     - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)


def test_identical_rank_deficient_gaussians_are_at_distance_zero() -> None:
    x = np.random.default_rng(1).normal(size=(4, 50))  # 4 samples in 50-d: rank 3
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    # Eigenvalues at rounding level contribute ~1e-7 of the trace, as in every sqrtm-based implementation.
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6 * np.trace(sigma)


def test_shape_mismatch_is_reported() -> None:
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
