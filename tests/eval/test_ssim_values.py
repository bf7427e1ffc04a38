"""SSIM golden values: identical frames, constant frames (closed form), and torchmetrics' implementation."""
import numpy as np
import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from worldmodel.eval.psnr import psnr
from worldmodel.eval.ssim import ssim


def test_identical_frames_score_one() -> None:
    x = np.random.default_rng(0).integers(0, 256, size=(2, 3, 32, 40, 3), dtype=np.uint8)
    np.testing.assert_allclose(ssim(x, x), np.ones((2, 3)), atol=1e-12)


def test_constant_frames_match_the_luminance_term() -> None:
    a, b = np.full((16, 16, 3), 100, np.uint8), np.full((16, 16, 3), 120, np.uint8)
    c1 = (0.01 * 255) ** 2
    # Zero variances: the contrast-structure term is c2 / c2 = 1, SSIM = (2ab + c1) / (a^2 + b^2 + c1).
    expected = (2 * 100 * 120 + c1) / (100 ** 2 + 120 ** 2 + c1)
    assert float(ssim(a, b)) == pytest.approx(expected, rel=1e-12)


def test_random_frames_match_torchmetrics_on_the_valid_region() -> None:
    # torchmetrics 1.9 averages its map over a reflect-padded "same" image; Wang et al.'s reference (and ours)
    # averages the "valid" region only, so compare with torchmetrics' map cropped by the window's half width.
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(2, 48, 64, 3), dtype=np.uint8)
    y = np.clip(x.astype(int) + rng.integers(-40, 41, size=x.shape), 0, 255).astype(np.uint8)
    ours = ssim(x, y)
    to_torch = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).double()  # noqa: E731
    _, full = structural_similarity_index_measure(
        to_torch(x), to_torch(y), gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=255.0,
        k1=0.01, k2=0.03, return_full_image=True)
    theirs = full[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_psnr_keeps_its_behaviour() -> None:
    x = np.zeros((1, 4, 4, 3), np.uint8)
    y = np.full((1, 4, 4, 3), 255, np.uint8)
    assert float(psnr(x, y)[0]) == pytest.approx(0.0)
    assert float(psnr(x, x)[0]) == 100.0
