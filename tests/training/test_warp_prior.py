"""Warp-prior training: the prior frames (identity without motion, closer to the truth than copying on a driving
clip), relative poses, and the objective's swap (input, time, target; an oracle scores zero)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from worldmodel.data.synthetic import SyntheticDriving
from worldmodel.diffusion import RectifiedFlow
from worldmodel.experimental.warp_prior import WarpPriorStart
from worldmodel.codecs import DCTCodec
from worldmodel.rollout.jobs import calibration_of
from worldmodel.rollout.warp_start import warp_views
from worldmodel.training.warp_prior import relative_poses, warp_prior_latents
from worldmodel.viz import from_uint8


def test_relative_poses_golden() -> None:
    # Facing +y (yaw 90 degrees) and moving 1 m along +y is 1 m straight ahead; a further quarter turn is yaw pi/2.
    poses = np.array([[5.0, 2.0, math.pi / 2], [5.0, 3.0, math.pi / 2], [4.0, 2.0, math.pi]])
    rel = relative_poses(poses, origin=0)
    np.testing.assert_allclose(rel, [[0, 0, 0], [1, 0, 0], [0, 1, math.pi / 2]], atol=1e-12)


def _clips(n: int = 2) -> tuple[torch.Tensor, list[dict]]:
    world = SyntheticDriving(num_clips=n, num_frames=4, fps=3.3333, views="front", size=(64, 128), seed=0, split="val")
    clips = [world[i] for i in range(n)]
    frames = from_uint8(torch.from_numpy(np.stack([c["frames"] for c in clips])))  # (B, T, V, 3, H, W)
    return frames, [c["meta"] for c in clips]


# One coefficient per colour and pixel: an orthonormal colour rotation, so latents carry the frames exactly.
LOSSLESS = DCTCodec(block=1, luma=1, chroma=1)


def warp_prior_frames(frames: torch.Tensor, metas: list[dict], num_reference: torch.Tensor):
    """The prior of frames (B, T, V, 3, H, W) through the lossless codec, back in pixels."""
    prior, has_prior = warp_prior_latents(LOSSLESS, LOSSLESS.encode_video(frames), metas, num_reference)
    return LOSSLESS.decode_video(prior), has_prior


def test_prior_keeps_references_and_is_the_last_reference_without_motion() -> None:
    frames, metas = _clips()
    still = [dict(m, ego_poses=np.zeros_like(m["ego_poses"])) for m in metas]
    prior, has_prior = warp_prior_frames(frames, still, torch.tensor([1, 2]))
    assert has_prior.tolist() == [True, True]
    torch.testing.assert_close(prior[0, :1], frames[0, :1])
    torch.testing.assert_close(prior[1, :2], frames[1, :2])
    # No motion: every predicted frame of the prior is the last reference frame itself.
    torch.testing.assert_close(prior[0, 1:], frames[0, :1].expand(3, -1, -1, -1, -1), atol=1e-5, rtol=0)
    torch.testing.assert_close(prior[1, 2:], frames[1, 1:2].expand(2, -1, -1, -1, -1), atol=1e-5, rtol=0)


def test_prior_of_a_driving_clip_is_closer_to_the_truth_than_copying() -> None:
    frames, metas = _clips()
    prior, _ = warp_prior_frames(frames, metas, torch.tensor([1, 1]))
    copy = frames[:, :1].expand_as(frames[:, 1:])
    warp_error = (prior[:, 1:] - frames[:, 1:]).square().mean()
    copy_error = (copy - frames[:, 1:]).square().mean()
    assert warp_error < 0.85 * copy_error, (warp_error.item(), copy_error.item())


def test_clips_without_calibration_or_references_get_no_prior() -> None:
    frames, metas = _clips()
    prior, has_prior = warp_prior_frames(frames, [dict(metas[0], intrinsics=None), metas[1]], torch.tensor([1, 0]))
    assert has_prior.tolist() == [False, False]
    torch.testing.assert_close(prior, frames)


class SampleOracle(nn.Module):
    """Predicts the true clean clip whatever it is given, and records its inputs."""

    def __init__(self, z0: torch.Tensor) -> None:
        super().__init__()
        self.z0, self.seen = z0, []
        self.config = SimpleNamespace(prediction="sample", patch_size=1)

    def forward(self, latents, tau, **kwargs):
        self.seen.append((latents.clone(), tau.clone()))
        return self.z0.clone()


def test_objective_starts_chosen_samples_from_the_noised_prior() -> None:
    torch.manual_seed(0)
    z0 = torch.randn(6, 4, 1, 3, 2, 2)
    prior = z0 + 0.5 * torch.randn_like(z0)
    has_prior = torch.tensor([True, True, True, True, False, False])
    objective = RectifiedFlow(time_sampling="uniform", action_dropout=0.0,
                              extensions=[WarpPriorStart(probability=1.0, tau=(0.2, 0.4))])
    oracle = SampleOracle(z0)
    loss, logs = objective.training_loss(oracle, z0, torch.tensor([1, 1, 2, 3, 1, 1]), prior=prior,
                                         has_prior=has_prior, generator=torch.Generator().manual_seed(2))
    # The truth is reached from the prior too: a perfect network scores zero (this seed draws no time below
    # the clamp MIN_TAU of the velocity conversion for the rows without a prior).
    assert loss.item() == pytest.approx(0.0, abs=1e-8)
    assert logs["warp_prior_fraction"].item() == pytest.approx(4 / 6)
    seen, tau = oracle.seen[0]
    eps_rows = (seen[:4, 3] - (1 - tau[:4, 3, None, None, None, None]) * prior[:4, 3]) / tau[:4, 3, None, None, None, None]
    future_tau = tau[:4, 3]
    assert bool(((future_tau >= 0.2) & (future_tau <= 0.4)).all())
    # Chosen rows: the input is (1 - tau) prior + tau eps with unit-spread eps; references stay the truth.
    assert 0.5 < eps_rows.std().item() < 1.5
    torch.testing.assert_close(seen[2, :2], z0[2, :2])
    # Rows without a prior noise their own clip, as without warp-prior training.
    no_prior_eps = (seen[4:, 1:] - (1 - tau[4:, 1:, None, None, None, None]) * z0[4:, 1:]) / tau[4:, 1:, None, None, None, None]
    assert 0.5 < no_prior_eps.std().item() < 1.5
    wrong = (seen[4:, 1:] - (1 - tau[4:, 1:, None, None, None, None]) * prior[4:, 1:]) / tau[4:, 1:, None, None, None, None]
    assert (wrong - no_prior_eps).abs().max().item() > 0.1


def test_a_network_that_returns_the_prior_is_penalised() -> None:
    torch.manual_seed(0)
    z0 = torch.randn(2, 3, 1, 3, 2, 2)
    prior = z0 + torch.randn_like(z0)
    objective = RectifiedFlow(time_sampling="uniform", extensions=[WarpPriorStart(probability=1.0)])
    copier = SampleOracle(prior)
    loss, _ = objective.training_loss(copier, z0, torch.tensor([1, 1]), prior=prior)
    assert loss.item() > 1.0


def test_bad_warp_prior_settings_are_named() -> None:
    for bad in (1.5, 0.0):
        with pytest.raises(ValueError, match=r"extension.warp_prior.probability must be in \(0, 1\]"):
            WarpPriorStart(probability=bad)
    for bad in [(0.0, 0.5), (0.01, 0.04), 0.4, (0.1, 0.2, 0.3), (0.5, 0.1)]:
        with pytest.raises(ValueError, match=r"extension.warp_prior.tau must be \[lo, hi\]"):
            WarpPriorStart(tau=bad)
    objective = RectifiedFlow(extensions=[WarpPriorStart(probability=0.5)])
    with pytest.raises(ValueError, match="warp prior has shape"):
        objective.training_loss(SampleOracle(torch.zeros(1, 2, 1, 3, 2, 2)), torch.zeros(1, 2, 1, 3, 2, 2),
                                torch.tensor([1]), prior=torch.zeros(1, 2, 1, 3, 4, 4))
    with pytest.raises(ValueError, match="has_prior"):
        objective.training_loss(SampleOracle(torch.zeros(2, 2, 1, 3, 2, 2)), torch.zeros(2, 2, 1, 3, 2, 2),
                                torch.tensor([1, 1]), prior=torch.zeros(2, 2, 1, 3, 2, 2), has_prior=torch.ones(3))


def test_training_module_feeds_the_rollouts_warp_prior(tmp_path) -> None:
    from hydra.utils import instantiate

    from tests.conftest import TINY_RUN
    from worldmodel.config import compose_config
    from worldmodel.training.train import build_module

    cfg = compose_config("train", [*TINY_RUN, f"run_dir={tmp_path}", "extension=warp_prior",
                                   "extension.warp_prior.probability=1.0"])
    module = build_module(cfg, run_config={})
    data = instantiate(cfg.data, reference_choices=[0, 1, 2, 3], reference_weights=[0, 1, 1, 1], _convert_="all")
    batch = next(iter(data.train_dataloader()))
    latents = module.batch_latents(batch)
    prior, has_prior = module.warp_prior(latents, batch)
    assert has_prior.all() and prior.shape == latents.shape
    # As the rollout's warp start: the last reference latent decoded, warped, encoded again.
    for i, (k, meta) in enumerate(zip(batch["num_reference"].tolist(), batch["meta"])):
        torch.testing.assert_close(prior[i, :k], latents[i, :k])  # references untouched
        motion = relative_poses(np.asarray(meta["ego_poses"]), k - 1)[k:]
        calibration = calibration_of(meta["intrinsics"], meta["extrinsics"], pixel_offset=0.5)
        warped = warp_views(module.codec.decode(latents[i, k - 1]), motion, calibration)  # (n, V, 3, H, W)
        torch.testing.assert_close(prior[i, k:], module.codec.encode_video(warped[None])[0], atol=1e-4, rtol=0)
    loss, logs = module._loss(module.model, batch)
    assert torch.isfinite(loss) and logs["warp_prior_fraction"].item() == 1.0
    # A latent cache carries no frames; the prior comes from the latents all the same.
    cached = {k: v for k, v in batch.items() if k != "frames"} | {"latents": latents}
    _, cached_logs = module._loss(module.model, cached)
    assert cached_logs["warp_prior_fraction"].item() == 1.0
    # Validation scores the plain objective, comparable with runs trained without the prior.
    _, plain_logs = module._loss(module.model, batch, training=False)
    assert "warp_prior_fraction" not in plain_logs


def test_prior_started_samples_are_never_masked() -> None:
    torch.manual_seed(0)
    z0 = torch.randn(8, 3, 1, 3, 2, 2)
    objective = RectifiedFlow(time_sampling="uniform", mr_probability=1.0,
                              extensions=[WarpPriorStart(probability=0.5)])

    class Recorder(SampleOracle):
        training = True
        reconstruction = object()

        def forward(self, latents, tau, **kwargs):
            self.seen.append(("mask_plan" in kwargs, latents.shape[0]))
            return self.z0[: latents.shape[0]].clone()

    model = Recorder(z0)
    has_prior = torch.tensor([True] * 4 + [False] * 4)
    _, logs = objective.training_loss(model, z0, torch.ones(8, dtype=torch.long), prior=z0 + 0.1,
                                      has_prior=has_prior, generator=torch.Generator().manual_seed(3))
    chosen = round(logs["warp_prior_fraction"].item() * 8)
    assert chosen > 0
    # The masked pass runs on every row (the same passes on every rank); the prior-started rows weigh zero in it.
    assert sorted(model.seen) == [(False, 8), (True, 8)]
    assert logs["mr_fraction"].item() == pytest.approx((8 - chosen) / 8)
