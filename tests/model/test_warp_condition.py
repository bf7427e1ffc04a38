"""Warp conditioning (`model.warp_condition`): the warp reaches the network, zero-initialised, from training,
the sampler and the rollout engine alike, and a model without it refuses one."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from tests.model.test_maskgwm import tiny_model
from worldmodel.codecs import DCTCodec
from worldmodel.data.actions import pack_actions
from worldmodel.data.synthetic import CAMERAS
from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.rollout.warp_start import CameraCalibration, WarpStart, WarpStartError, checked_warp_start

SHAPE = (2, 4, 1, 16, 8, 8)  # (B, T, V, C, h, w) on the tiny preset's 16 channels


def _conditioned(seed: int = 0, open_warp: bool = False):
    model = tiny_model(seed, warp_condition=True)
    with torch.no_grad():
        for block in model.temporal_blocks:  # let frames talk to each other
            block.adaLN_modulation[-1].weight.normal_(std=0.1)
        if open_warp:
            model.warp_embed.weight.normal_(std=0.2)
            model.warp_embed.bias.normal_(std=0.2)
    return model


def _inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    latents, warp = torch.randn(SHAPE, generator=gen), torch.randn(SHAPE, generator=gen)
    tau = torch.tensor([[0.0, 0.7, 0.7, 0.7], [0.0, 0.0, 0.3, 0.3]])
    is_reference = tau == 0
    return latents, warp, tau, is_reference


class Spy:
    """Records the keyword arguments of every forward call of a module (a forward pre-hook, the module runs)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls: list[dict] = []
        module.register_forward_pre_hook(lambda _, args, kwargs: self.calls.append(dict(kwargs)), with_kwargs=True)


def test_zero_initialised_warp_leaves_the_model_unchanged() -> None:
    model = _conditioned()
    latents, warp, tau, is_reference = _inputs()
    plain = model(latents, tau, is_reference=is_reference)
    with_warp = model(latents, tau, is_reference=is_reference, warp=warp, warp_valid=~is_reference)
    torch.testing.assert_close(with_warp, plain, atol=0, rtol=0)
    assert model.warp_embed is not None and tiny_model().warp_embed is None


def test_only_frames_with_a_valid_warp_take_it() -> None:
    model = _conditioned(open_warp=True)
    latents, warp, tau, is_reference = _inputs()
    plain = model(latents, tau, is_reference=is_reference)
    none_valid = model(latents, tau, is_reference=is_reference, warp=warp,
                       warp_valid=torch.zeros_like(is_reference))
    torch.testing.assert_close(none_valid, plain, atol=0, rtol=0)  # invalid frames add exactly nothing
    with_warp = model(latents, tau, is_reference=is_reference, warp=warp, warp_valid=~is_reference)
    assert (with_warp - plain).abs().amax() > 1e-3
    other = warp.clone()
    other[is_reference] += 5.0  # the warp of a frame it is not valid for must not matter
    torch.testing.assert_close(model(latents, tau, is_reference=is_reference, warp=other, warp_valid=~is_reference),
                               with_warp, atol=1e-6, rtol=0)


def test_bad_warp_inputs_are_named() -> None:
    latents, warp, tau, is_reference = _inputs()
    with pytest.raises(ValueError, match="built without warp_condition"):
        tiny_model()(latents, tau, is_reference=is_reference, warp=warp, warp_valid=~is_reference)
    model = _conditioned()
    with pytest.raises(ValueError, match="must come together"):
        model(latents, tau, is_reference=is_reference, warp=warp)
    with pytest.raises(ValueError, match="shaped like the latents"):
        model(latents, tau, is_reference=is_reference, warp=warp[:, :2], warp_valid=~is_reference[:, :2])


@pytest.mark.parametrize("dropout", [0.0, 1.0])
def test_training_hands_the_prior_to_a_conditioned_model(dropout: float) -> None:
    model = _conditioned().train()
    spy = Spy(model)
    latents, prior, _, _ = _inputs()
    num_reference = torch.tensor([1, 2])
    has_prior = torch.tensor([True, False])
    objective = RectifiedFlow(warp_condition_dropout=dropout)
    _, logs = objective.training_loss(model, latents, num_reference, prior=prior, has_prior=has_prior,
                                      generator=torch.Generator().manual_seed(0))
    (call,) = spy.calls
    assert call["warp"] is prior
    expected = torch.zeros(2, 4, dtype=torch.bool)
    if dropout == 0.0:
        expected[0, 1:] = True  # sample 0's predicted frames; sample 1 has no prior
    assert torch.equal(call["warp_valid"], expected)
    assert logs["warp_condition_fraction"] == expected.any(dim=1).float().mean()
    # A model without the condition never gets one, prior or not.
    plain = tiny_model().train()
    plain_spy = Spy(plain)
    RectifiedFlow().training_loss(plain, latents, num_reference, prior=prior, has_prior=has_prior)
    assert "warp" not in plain_spy.calls[0]


def test_sampler_gives_the_warp_to_both_guidance_passes_and_checks_its_shape() -> None:
    model = _conditioned(open_warp=True)
    spy = Spy(model)
    reference = torch.randn(2, 1, 1, 16, 8, 8)
    warp = torch.randn(2, 3, 1, 16, 8, 8)
    sampler = FlowEulerSampler(num_steps=2, cfg_scale=3.0)
    sampler.sample(model, reference, 4, torch.randn(2, 19), torch.ones(2, 5, dtype=torch.bool), warp=warp,
                   generator=torch.Generator().manual_seed(0))
    assert len(spy.calls) == 2
    for call in spy.calls:
        assert call["warp"].shape == (4, 4, 1, 16, 8, 8)  # conditional and unconditional batch
        torch.testing.assert_close(call["warp"][:2, 1:], warp)
        torch.testing.assert_close(call["warp"][2:, 1:], warp)
        assert torch.equal(call["warp_valid"][:, 0], torch.zeros(4, dtype=torch.bool))
        assert bool(call["warp_valid"][:, 1:].all())
    with pytest.raises(ValueError, match="warp has shape"):
        sampler.sample(model, reference, 4, warp=warp[:, :2])


SIZE = (32, 64)


def _calibration() -> CameraCalibration:
    camera = CAMERAS["CAM_FRONT"]
    return CameraCalibration(camera.intrinsics(SIZE)[None], camera.camera_to_ego()[None], 0.5)


def _driving(b: int, trajectory: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    action = {"command": np.int64(0), "trajectory": np.stack([[2.5, 5, 7.5, 10], np.zeros(4)], axis=1),
              "speed": np.full(4, 5.0), "angle": np.zeros(4), "goal": np.zeros(2),
              "valid": {"command": True, "trajectory": trajectory, "speed": True, "angle": False, "goal": False}}
    values, valid = pack_actions(action)
    return values.reshape(1, -1).repeat(b, 1), valid.reshape(1, -1).repeat(b, 1)


def test_engine_warps_every_chunk_for_a_conditioned_model_without_a_warp_start() -> None:
    codec = DCTCodec()
    model = _conditioned(open_warp=True)
    spy = Spy(model)
    frames = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 16), size=SIZE, mode="bilinear") - 0.5
    reference = codec.encode_video(frames[:, None, None])  # (1, 1, 1, 16, 8, 16)
    schedule = ChunkSchedule(chunk_frames=4, first_reference=1, carry_frames=2, num_chunks=2)
    sampler = FlowEulerSampler(num_steps=3, cfg_scale=1.0)
    warp = WarpStart(codec, [_calibration()], fps=10.0, tau=None)
    engine = RolloutEngine(model, sampler, schedule, start=warp)
    actions = [_driving(1)] * 2
    chunks = list(engine.stream(reference, actions, torch.Generator().manual_seed(0)))
    assert len(spy.calls) == 2 * 3  # every step of both chunks from pure noise: no warp start
    first = warp(reference, *actions[0], chunk_frames=4)  # what chunk 0's model calls must have seen
    for call in spy.calls[:3]:
        torch.testing.assert_close(call["warp"][:, 1:], first)
    second = warp(chunks[0][:, 2:4], *actions[1], chunk_frames=4)  # chunk 1 warps chunk 0's last frame
    torch.testing.assert_close(spy.calls[3]["warp"][:, 2:], second)
    # A chunk without a commanded path is sampled without a warp rather than refused.
    spy.calls.clear()
    list(engine.stream(reference, [_driving(1, trajectory=False)] * 2, torch.Generator().manual_seed(0)))
    assert all("warp" not in call for call in spy.calls)


def test_checked_warp_start_for_the_condition(caplog: pytest.LogCaptureFixture) -> None:
    codec = DCTCodec()
    plan = [_driving(1)]
    assert checked_warp_start(codec, ["a"], [_calibration()], [plan], 10.0, None) is None
    warp = checked_warp_start(codec, ["a"], [_calibration()], [plan], 10.0, None, condition=True)
    assert isinstance(warp, WarpStart) and warp.tau is None
    with caplog.at_level(logging.WARNING):
        assert checked_warp_start(codec, ["clip7"], [None], [plan], 10.0, None, condition=True) is None
    assert "without its warp" in caplog.text and "clip7" in caplog.text
    with pytest.raises(WarpStartError, match="clip7 has none"):  # a warp start still refuses it
        checked_warp_start(codec, ["clip7"], [None], [plan], 10.0, 0.4, condition=True)
