"""FID and FVD with the real networks: zero against themselves, growing with noise and with blur.

Sets are tiny for CPU time (8 images for FID, 4 clips of 10 frames for FVD), so the values are biased and the
covariances rank-deficient; the distances still order degradations reliably because the mean feature shift
dominates. Noise levels (sigma 8 and 32 grey levels) and blurs (sigma 1 and 3 px) are far enough apart to keep
the ordering robust to the few samples.
"""
import cv2
import numpy as np
import torch

from worldmodel.eval.frechet import FID, FVD


def _noisy(x: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0.0, sigma, size=x.shape)
    return np.clip(x.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def _blurred(x: np.ndarray, sigma: float) -> np.ndarray:
    flat = x.reshape(-1, *x.shape[-3:])
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in flat]).reshape(x.shape)


def _to_torch(x: np.ndarray, layout: tuple[int, ...]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).permute(*layout)


def _distances(metric, real: np.ndarray, fakes: list[np.ndarray], layout: tuple[int, ...]) -> list[float]:
    """Real features extracted once (reset_real_features=False); each fake set streamed in two updates."""
    metric.reset()
    metric.update(_to_torch(real, layout), real=True)
    out = []
    for fake in fakes:
        metric.reset()  # keeps the real statistics
        half = len(fake) // 2
        for part in (fake[:half], fake[half:]):
            metric.update(_to_torch(part, layout), real=False)
        value = metric.compute()
        assert value.dtype == torch.float64
        out.append(float(value))
    return out


def test_fid_is_zero_against_itself_and_grows_with_noise_and_blur(world_clips: np.ndarray) -> None:
    images = world_clips[:, 0]  # (8, H, W, 3), one frame per clip
    same, *noise_blur = _distances(FID(reset_real_features=False), images, [
        images, _noisy(images, 8.0), _noisy(images, 32.0), _blurred(images, 1.0), _blurred(images, 3.0)],
        (0, 3, 1, 2))
    noise, blur = noise_blur[:2], noise_blur[2:]
    assert abs(same) < 1e-6 * noise[1]
    assert 0 < noise[0] < noise[1], noise
    assert 0 < blur[0] < blur[1], blur


def test_fvd_is_zero_against_itself_and_grows_with_noise_and_blur(world_clips: np.ndarray) -> None:
    clips = world_clips[:4]  # (4, 10, H, W, 3)
    same, *noise_blur = _distances(FVD(reset_real_features=False), clips, [
        clips, _noisy(clips, 8.0), _noisy(clips, 32.0), _blurred(clips, 1.0), _blurred(clips, 3.0)],
        (0, 1, 4, 2, 3))
    noise, blur = noise_blur[:2], noise_blur[2:]
    assert abs(same) < 1e-6 * noise[1]
    assert 0 < noise[0] < noise[1], noise
    assert 0 < blur[0] < blur[1], blur


def test_metric_states_reduce_by_summation() -> None:
    reductions = FVD()._reductions  # torchmetrics' DDP reduction per state
    for name in ("real_features_sum", "real_features_cov_sum", "real_features_num_samples",
                 "fake_features_sum", "fake_features_cov_sum", "fake_features_num_samples"):
        assert reductions[name].__name__ == "dim_zero_sum", name
