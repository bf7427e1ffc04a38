"""Warp-residual output (`model.warp_residual`): the clean-frame output is the warp plus the network's answer, on
frames with a valid warp only, so a network that answers nothing samples the warp itself."""
from __future__ import annotations

import pytest
import torch

from tests.model.test_maskgwm import tiny_model
from tests.model.test_warp_condition import SHAPE, _conditioned, _inputs
from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow
from worldmodel.model import MaskGWM

# The tiny preset's shape, small enough to build in milliseconds.
TINY = dict(sample_size=8, num_layers=2, attention_head_dim=8, num_attention_heads=2, joint_attention_dim=16,
            caption_projection_dim=16, pooled_projection_dim=16, pos_embed_max_size=8, prediction="sample")


def _residual(seed: int = 0):
    model = _conditioned(seed, open_warp=True)
    model.register_to_config(warp_residual=True)
    return model


def test_output_is_the_plain_output_plus_the_warp_of_valid_frames() -> None:
    plain, residual = _conditioned(open_warp=True), _residual()
    latents, warp, tau, is_reference = _inputs()
    valid = ~is_reference
    valid[1, 2] = False  # a new frame without its warp gets none added
    out = residual(latents, tau, is_reference=is_reference, warp=warp, warp_valid=valid)
    base = plain(latents, tau, is_reference=is_reference, warp=warp, warp_valid=valid)
    keep = valid[..., None, None, None, None]
    torch.testing.assert_close(out, base + torch.where(keep, warp, 0.0), atol=1e-6, rtol=0)
    # Without a warp the model is the plain clean-frame predictor.
    torch.testing.assert_close(residual(latents, tau, is_reference=is_reference),
                               plain(latents, tau, is_reference=is_reference), atol=0, rtol=0)


def test_a_network_that_answers_nothing_samples_exactly_the_warp() -> None:
    model = _residual()
    with torch.no_grad():
        model.proj_out.weight.zero_()
        model.proj_out.bias.zero_()
    latents, warp, _, _ = _inputs()
    reference, new_warp = latents[:, :1], warp[:, 1:]
    actions = torch.randn(SHAPE[0], 19)
    for sampler in (FlowEulerSampler(num_steps=4, cfg_scale=4.0, churn=1.0), FlowEulerSampler(num_steps=1)):
        out = sampler.sample(model, reference, SHAPE[1], actions, generator=torch.Generator().manual_seed(0),
                             warp=new_warp)
        torch.testing.assert_close(out[:, 1:], new_warp, atol=1e-5, rtol=0)
        torch.testing.assert_close(out[:, :1], reference, atol=0, rtol=0)


def test_the_objective_scores_an_oracle_residual_at_zero() -> None:
    """With the truth's own frames as the warp, a network that answers nothing predicts the truth: zero loss."""
    model = _residual()
    with torch.no_grad():
        model.proj_out.weight.zero_()
        model.proj_out.bias.zero_()
    latents = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    num_reference = torch.tensor([1, 2])
    objective = RectifiedFlow(time_sampling="uniform", warp_condition_dropout=0.0)
    loss, logs = objective.training_loss(model, latents, num_reference, prior=latents,
                                         has_prior=torch.ones(SHAPE[0], dtype=torch.bool))
    assert float(logs["warp_condition_fraction"]) == 1.0
    assert float(loss.detach()) < 1e-10


def test_settings_it_cannot_work_with_are_named() -> None:
    with pytest.raises(ValueError, match="warp_residual .* needs warp_condition=true and prediction=sample"):
        MaskGWM(**TINY, warp_residual=True)
    with pytest.raises(ValueError, match="prediction='velocity'"):
        MaskGWM(**{**TINY, "prediction": "velocity"}, warp_residual=True, warp_condition=True)
