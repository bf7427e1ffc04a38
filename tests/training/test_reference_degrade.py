"""Reference degradation: only reference frames change, each kind does what it says (blur keeps a constant grid and
removes detail, contrast keeps the mean colour and scales the spread, saturation keeps the luma and scales the colour,
noise adds spread), per-sample draws, bad settings
named, and a training step that degrades before the warp prior is made."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.training.test_self_forcing import CODEC, SAMPLER, _batch, _latents
from tests.model.test_maskgwm import tiny_model
from worldmodel.config import compose_config
from worldmodel.diffusion import RectifiedFlow
from worldmodel.training.module import WorldModelModule
from worldmodel.training.reference_degrade import LUMA, ReferenceDegrade, degrade_frames, gaussian_blur
from worldmodel.training.train import train


def _frames(seed: int = 0) -> torch.Tensor:
    """Smooth random frames (2, 3, 16, 24) in [-0.6, 0.6], so no degradation below reaches the clamp."""
    x = torch.rand(2, 3, 4, 6, generator=torch.Generator().manual_seed(seed))
    return (torch.nn.functional.interpolate(x, size=(16, 24), mode="bilinear") - 0.5) * 1.2


def _gens(n: int, seed: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (x * torch.tensor(LUMA).view(3, 1, 1)).sum(dim=-3)


@pytest.mark.parametrize("field, value", [("probability", 1.2), ("blur", -0.5), ("contrast", 1.5),
                                          ("saturation", -0.1), ("noise", -1.0)])
def test_bad_settings_are_named(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"reference_degrade.{field}"):
        ReferenceDegrade(**{field: value})


def test_off_leaves_the_latents_alone() -> None:
    x = _latents(_batch())
    out, chosen = ReferenceDegrade(probability=0.0)(CODEC, x, torch.tensor([1, 2]), _gens(2))
    assert out is x and not chosen.any() and not ReferenceDegrade().enabled


def test_only_the_reference_frames_of_chosen_samples_change() -> None:
    x = _latents(_batch(n=3))
    k = torch.tensor([1, 0, 3])
    out, chosen = ReferenceDegrade(probability=1.0)(CODEC, x, k, _gens(3))
    assert chosen.tolist() == [True, False, True]  # a sample without reference frames has nothing to degrade
    for i, n in enumerate(k.tolist()):
        torch.testing.assert_close(out[i, n:], x[i, n:], rtol=0, atol=0)
        assert all(not torch.allclose(out[i, j], x[i, j]) for j in range(n))


def test_blur_keeps_a_flat_frame_and_its_mean_and_removes_detail() -> None:
    flat = torch.full((2, 3, 16, 24), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(1)) * 2 - 1
    blurred = degrade_frames(x, 1.5, 1.0, 1.0, 0.0)
    detail = lambda a: a.diff(dim=-1).square().mean() + a.diff(dim=-2).square().mean()  # noqa: E731
    assert blurred.shape == x.shape and detail(blurred) < 0.2 * detail(x)
    torch.testing.assert_close(blurred.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=0.05, rtol=0)
    assert torch.equal(gaussian_blur(x, 0.0), x)


def test_contrast_scales_each_frames_spread_around_its_mean_colour() -> None:
    x = _frames()
    out = degrade_frames(x, 0.0, 0.4, 1.0, 0.0)
    torch.testing.assert_close(out.mean(dim=(-2, -1)), x.mean(dim=(-2, -1)), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.std(dim=(-2, -1)), 0.4 * x.std(dim=(-2, -1)), atol=1e-6, rtol=1e-5)


def test_saturation_keeps_the_luma_and_scales_the_colour() -> None:
    x = _frames()
    out = degrade_frames(x, 0.0, 1.0, 0.25, 0.0)
    torch.testing.assert_close(_luma(out), _luma(x), atol=1e-6, rtol=0)
    grey = _luma(x)[:, None]
    torch.testing.assert_close(out - _luma(out)[:, None], 0.25 * (x - grey), atol=1e-6, rtol=0)
    assert torch.allclose(degrade_frames(x, 0.0, 1.0, 0.0, 0.0), grey.expand_as(x), atol=1e-6)


def test_noise_adds_that_much_spread() -> None:
    x = _frames()
    added = degrade_frames(x, 0.0, 1.0, 1.0, 0.05, torch.Generator().manual_seed(0)) - x
    assert abs(float(added.std()) - 0.05) < 0.005 and abs(float(added.mean())) < 0.005


def test_each_samples_draws_follow_its_own_generator() -> None:
    x = _latents(_batch(n=3))
    degrade = ReferenceDegrade(probability=0.7)
    k = torch.tensor([2, 2, 2])
    whole, chosen = degrade(CODEC, x, k, _gens(3))
    alone, _ = degrade(CODEC, x[1:2], k[1:2], _gens(3)[1:2])
    torch.testing.assert_close(alone[0], whole[1], rtol=0, atol=0)
    again, _ = degrade(CODEC, x, k, _gens(3))
    assert torch.equal(again, whole) and chosen.any()


def test_the_training_step_degrades_before_the_warp_prior(monkeypatch: pytest.MonkeyPatch) -> None:
    module = WorldModelModule(tiny_model(warp_condition=True).train(), CODEC, RectifiedFlow(), SAMPLER,
                              ema_decay=None, reference_degrade=ReferenceDegrade(probability=1.0, contrast=0.9))
    batch = _batch()
    seen = []
    original = module.warp_prior
    monkeypatch.setattr(module, "warp_prior", lambda latents, b: seen.append(latents) or original(latents, b))
    _, logs = module._loss(module.model, batch, generator=_gens(2), degrade_generator=_gens(2, 7), degrade=True)
    clean = _latents(batch)
    k = batch["num_reference"]
    assert logs["reference_degraded"] == 1.0
    assert not torch.allclose(seen[0][0, :k[0]], clean[0, :k[0]])
    torch.testing.assert_close(seen[0][0, k[0]:], clean[0, k[0]:])
    # Validation (degrade=False) sees the clean clip.
    _, logs = module._loss(module.model, batch, generator=_gens(2))
    assert "reference_degraded" not in logs
    torch.testing.assert_close(seen[1], clean)


def test_a_run_with_reference_degradation(tmp_path: Path) -> None:
    cfg = compose_config("train", ["experiment=quickstart", "debug=fast_dev_run", "data.clip.size=[32,64]",
                                   "data.train.num_clips=4", "reference_degrade.probability=1.0",
                                   f"run_dir={tmp_path}"])
    result = train(cfg)
    assert result.metrics["train/reference_degraded"] > 0 and result.metrics["train/loss"] > 0
