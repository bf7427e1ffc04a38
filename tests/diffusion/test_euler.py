"""Tests for worldmodel.diffusion.FlowEulerSampler: exact transport, references, determinism, guidance."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from tests.model.test_maskgwm import tiny_preset
from worldmodel.diffusion import FlowEulerSampler

CONF = Path(__file__).resolve().parents[2] / "conf"


class StraightLineOracle(nn.Module):
    """Returns the exact velocity (z - z0) / tau of the straight path through a known clip z0."""

    def __init__(self, z0: torch.Tensor):
        super().__init__()
        self.z0 = z0

    def forward(self, latents, tau, actions=None, action_valid=None, is_reference=None, **kwargs):
        tau = tau[:, :, None, None, None, None]
        return torch.where(tau > 0, (latents - self.z0) / tau.clamp(min=1e-12), torch.zeros_like(latents))


class GuidanceProbe(nn.Module):
    """Velocity 2 for rows with any valid action group, 1 otherwise; records batch sizes."""

    def __init__(self):
        super().__init__()
        self.batch_sizes = []

    def forward(self, latents, tau, actions=None, action_valid=None, is_reference=None, **kwargs):
        self.batch_sizes.append(latents.shape[0])
        conditioned = torch.zeros(latents.shape[0]) if action_valid is None else action_valid.any(dim=1).float()
        return torch.ones_like(latents) + conditioned[:, None, None, None, None, None]


def clip(b=2, t=5, seed=0):
    return torch.randn(b, t, 1, 3, 4, 4, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shift", [1.0, 3.0])
@pytest.mark.parametrize("k", [0, 2])
def test_oracle_velocity_lands_exactly_on_the_clip(shift, k):
    z0 = clip()
    sampler = FlowEulerSampler(num_steps=7, cfg_scale=1.0, shift=shift)
    out = sampler.sample(StraightLineOracle(z0), z0[:, :k], num_frames=5, actions=None, action_valid=None,
                         generator=torch.Generator().manual_seed(1))
    assert out.shape == z0.shape
    assert torch.allclose(out, z0, atol=1e-5)
    assert torch.equal(out[:, :k], z0[:, :k])


def test_schedule_endpoints_and_shift():
    assert torch.allclose(FlowEulerSampler(num_steps=4).schedule(), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    shifted = FlowEulerSampler(num_steps=2, shift=3.0).schedule()
    assert torch.allclose(shifted, torch.tensor([1.0, 0.75, 0.0]))  # 3 * 0.5 / (1 + 2 * 0.5)
    assert (shifted[1:] < shifted[:-1]).all()


def test_guidance_formula_in_one_batched_pass():
    noise = torch.randn(3, 4, 1, 3, 4, 4)
    probe = GuidanceProbe()
    out = FlowEulerSampler(num_steps=5, cfg_scale=4.0).sample(
        probe, torch.zeros(3, 0, 1, 3, 4, 4), num_frames=4, actions=torch.randn(3, 19),
        action_valid=torch.ones(3, 5, dtype=torch.bool), noise=noise)
    # uncond + s * (cond - uncond) = 1 + 4 * (2 - 1) = 5, integrated over tau from 1 to 0.
    assert torch.allclose(out, noise - 5.0, atol=1e-5)
    assert probe.batch_sizes == [6] * 5


@pytest.mark.parametrize("cfg_scale, actions, valid, velocity, batch", [
    (1.0, True, True, 2.0, 3),     # guidance scale 1: conditional pass only
    (4.0, False, False, 1.0, 3),   # no actions at all
    (4.0, True, False, 1.0, 3),    # no action group valid
])
def test_guidance_skipped(cfg_scale, actions, valid, velocity, batch):
    noise = torch.randn(3, 4, 1, 3, 4, 4)
    probe = GuidanceProbe()
    out = FlowEulerSampler(num_steps=3, cfg_scale=cfg_scale).sample(
        probe, torch.zeros(3, 0, 1, 3, 4, 4), num_frames=4,
        actions=torch.randn(3, 19) if actions else None,
        action_valid=torch.full((3, 5), valid) if actions else None, noise=noise)
    assert torch.allclose(out, noise - velocity, atol=1e-5)
    assert probe.batch_sizes == [batch] * 3


def tiny_model_with_open_gates() -> nn.Module:
    """The tiny preset with its zero-initialised temporal gates and action projection made non-zero,
    so that references, noise and actions all reach the output."""
    torch.manual_seed(0)
    model = instantiate(tiny_preset()).eval()
    with torch.no_grad():
        for block in model.temporal_blocks:
            block.adaLN_modulation[-1].weight.normal_(std=0.1)
        model.action_embedding.proj.weight.normal_(std=0.05)
    return model


def test_tiny_model_sampling_is_deterministic_and_keeps_references():
    model = tiny_model_with_open_gates()
    sampler = instantiate(OmegaConf.load(CONF / "sampler" / "euler.yaml"), num_steps=3)
    reference = torch.randn(2, 2, 1, 16, 8, 8)
    actions, valid = torch.randn(2, 19), torch.ones(2, 5, dtype=torch.bool)

    def run(seed):
        return sampler.sample(model, reference, 4, actions, valid, generator=torch.Generator().manual_seed(seed))

    first = run(0)
    assert first.shape == (2, 4, 1, 16, 8, 8)
    assert torch.equal(first[:, :2], reference)
    assert torch.isfinite(first).all()
    assert torch.equal(run(0), first)
    assert not torch.allclose(run(1), first)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_frames"):
        FlowEulerSampler().sample(GuidanceProbe(), torch.zeros(1, 3, 1, 3, 4, 4), num_frames=3,
                                  actions=None, action_valid=None)
    with pytest.raises(ValueError, match="noise"):
        FlowEulerSampler().sample(GuidanceProbe(), torch.zeros(1, 1, 1, 3, 4, 4), num_frames=3,
                                  actions=None, action_valid=None, noise=torch.zeros(1, 3, 1, 3, 4, 4))
    with pytest.raises(ValueError, match="num_steps"):
        FlowEulerSampler(num_steps=0)


def test_sampler_never_asks_for_mask_reconstruction():
    """MR is training-only: even a model left in training mode is sampled on the full token grid."""
    torch.manual_seed(0)
    model = instantiate(tiny_preset()).train()
    plans = []
    model.register_forward_pre_hook(lambda mod, args, kwargs: plans.append(kwargs.get("mask_plan")),
                                    with_kwargs=True)
    out = FlowEulerSampler(num_steps=2, cfg_scale=4.0).sample(
        model, torch.randn(1, 1, 1, 16, 8, 8), 3, torch.randn(1, 19), torch.ones(1, 5, dtype=torch.bool))
    assert out.shape == (1, 3, 1, 16, 8, 8) and torch.isfinite(out).all()
    assert plans == [None, None]


@pytest.mark.parametrize("churn", [0.5, 1.0])
def test_churn_with_the_oracle_still_lands_exactly_on_the_clip(churn):
    """Fresh noise changes the path, never the end: an exact clean-frame estimate is reached at tau = 0."""
    z0 = clip()
    sampler = FlowEulerSampler(num_steps=6, cfg_scale=1.0, churn=churn)
    out = sampler.sample(StraightLineOracle(z0), z0[:, :1], num_frames=5, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(out, z0, atol=1e-5)


def test_churn_step_golden_values():
    """churn 0 is the Euler step; churn 1 is the clean estimate re-noised with the fresh draw alone."""
    z, v = torch.randn(1, 2, 1, 3, 4, 4), torch.randn(1, 2, 1, 3, 4, 4)
    tau, tau_next = 0.8, 0.5
    euler = FlowEulerSampler(churn=0.0)._step(z, v, tau, tau_next, torch.Generator().manual_seed(0))
    assert torch.allclose(euler, z + (tau_next - tau) * v)
    fresh = torch.randn(z.shape, generator=torch.Generator().manual_seed(0))
    renoised = FlowEulerSampler(churn=1.0)._step(z, v, tau, tau_next, torch.Generator().manual_seed(0))
    assert torch.allclose(renoised, (1 - tau_next) * (z - tau * v) + tau_next * fresh, atol=1e-6)
    half = FlowEulerSampler(churn=0.6)._step(z, v, tau, tau_next, torch.Generator().manual_seed(0))
    noise_estimate = z + (1 - tau) * v
    assert torch.allclose(half, (1 - tau_next) * (z - tau * v) + tau_next * (0.8 * noise_estimate + 0.6 * fresh),
                          atol=1e-6)


def test_churn_noise_per_item_does_not_depend_on_batch_mates():
    model = tiny_model_with_open_gates()
    sampler = FlowEulerSampler(num_steps=3, cfg_scale=1.0, churn=1.0)
    reference = torch.randn(2, 1, 1, 16, 8, 8)

    def generators(*seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    pair = sampler.sample(model, reference, 3, generator=generators(5, 6))
    alone = sampler.sample(model, reference[1:], 3, generator=generators(6))
    assert torch.allclose(pair[1:], alone, atol=1e-5)
    assert torch.equal(sampler.sample(model, reference, 3, generator=generators(5, 6)), pair)
    assert not torch.allclose(sampler.sample(model, reference, 3, generator=generators(5, 7))[1:], alone)
    with pytest.raises(ValueError, match="generators for a batch"):
        sampler.sample(model, reference, 3, generator=generators(5))


def test_churn_must_be_a_fraction():
    with pytest.raises(ValueError, match="churn"):
        FlowEulerSampler(churn=1.5)


def test_replace_makes_a_validated_copy():
    sampler = FlowEulerSampler(num_steps=30, cfg_scale=4.0)
    fewer = sampler.replace(num_steps=10, churn=1)
    assert (fewer.num_steps, fewer.cfg_scale, fewer.churn) == (10, 4.0, 1.0)
    assert (sampler.num_steps, sampler.churn) == (30, 0.0)
    with pytest.raises(ValueError, match="num_steps"):
        sampler.replace(num_steps=0)
    with pytest.raises(ValueError, match="no setting 'steps'"):
        sampler.replace(steps=10)


class InputRecorder(nn.Module):
    """Zero velocity; records the new frames and their diffusion times at every call."""

    def __init__(self):
        super().__init__()
        self.inputs, self.taus = [], []

    def forward(self, latents, tau, actions=None, action_valid=None, is_reference=None, **kwargs):
        self.inputs.append(latents[~is_reference].clone())
        self.taus.append(tau[~is_reference].clone())
        return torch.zeros_like(latents)


def test_start_begins_at_start_tau_from_the_noised_guess_and_skips_the_steps_above():
    reference = torch.randn(2, 1, 1, 3, 4, 4)
    noise = torch.randn(2, 2, 1, 3, 4, 4)
    guess = torch.randn(2, 2, 1, 3, 4, 4)
    recorder = InputRecorder()
    # Steps 1, .8, .6, .4, .2, 0: from 0.5 the sampler runs 0.5 -> 0.4 -> 0.2 -> 0, three calls.
    FlowEulerSampler(num_steps=5, cfg_scale=1.0).sample(recorder, reference, 3, noise=noise, start=guess,
                                                        start_tau=0.5)
    assert [float(t[0]) for t in recorder.taus] == pytest.approx([0.5, 0.4, 0.2])
    assert torch.allclose(recorder.inputs[0], (0.5 * guess + 0.5 * noise).reshape(-1, 1, 3, 4, 4), atol=1e-6)
    # A start_tau on the grid is not visited twice.
    recorder = InputRecorder()
    FlowEulerSampler(num_steps=5, cfg_scale=1.0).sample(recorder, reference, 3, noise=noise, start=guess,
                                                        start_tau=0.4)
    assert [float(t[0]) for t in recorder.taus] == pytest.approx([0.4, 0.2])


def test_evaluations_count_the_model_calls_of_a_sample():
    reference, noise = torch.randn(1, 1, 1, 3, 4, 4), torch.randn(1, 2, 1, 3, 4, 4)
    for steps, shift, start_tau in ((5, 1.0, 0.5), (5, 1.0, 0.4), (10, 1.0, 0.2), (10, 3.0, 0.2), (7, 3.0, 1.0),
                                    (30, 1.0, 0.2), (4, 1.0, 0.01)):
        sampler = FlowEulerSampler(num_steps=steps, cfg_scale=1.0, shift=shift)
        recorder = InputRecorder()
        sampler.sample(recorder, reference, 3, noise=noise, start=torch.randn_like(noise), start_tau=start_tau)
        assert sampler.evaluations(start_tau) == len(recorder.taus), (steps, shift, start_tau)
    # The demo's former setting: a 10-step schedule from tau 0.2 denoises each chunk in 2 calls, not 10.
    assert FlowEulerSampler(num_steps=10).evaluations(0.2) == 2
    assert FlowEulerSampler(num_steps=30).evaluations(0.2) == 6
    with pytest.raises(ValueError, match="start_tau"):
        FlowEulerSampler().evaluations(0.0)


def test_start_at_tau_one_is_the_plain_sampler():
    model = StraightLineOracle(torch.randn(1, 3, 1, 3, 4, 4))
    reference, noise = torch.randn(1, 1, 1, 3, 4, 4), torch.randn(1, 2, 1, 3, 4, 4)
    sampler = FlowEulerSampler(num_steps=4, cfg_scale=1.0, churn=0.5)
    plain = sampler.sample(model, reference, 3, noise=noise, generator=torch.Generator().manual_seed(3))
    started = sampler.sample(model, reference, 3, noise=noise, generator=torch.Generator().manual_seed(3),
                             start=torch.randn(1, 2, 1, 3, 4, 4), start_tau=1.0)
    assert torch.equal(plain, started)


def test_start_with_the_oracle_still_lands_on_the_clip():
    z0 = torch.randn(1, 3, 1, 3, 4, 4)
    out = FlowEulerSampler(num_steps=6, cfg_scale=1.0).sample(
        StraightLineOracle(z0), z0[:, :1], 3, noise=torch.randn(1, 2, 1, 3, 4, 4),
        start=torch.randn(1, 2, 1, 3, 4, 4), start_tau=0.45)
    assert torch.allclose(out, z0, atol=1e-5)


def test_bad_start_is_named():
    reference, sampler = torch.randn(1, 1, 1, 3, 4, 4), FlowEulerSampler(num_steps=2, cfg_scale=1.0)
    with pytest.raises(ValueError, match="start has shape"):
        sampler.sample(InputRecorder(), reference, 3, start=torch.randn(1, 1, 1, 3, 4, 4), start_tau=0.5)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"start_tau must be in \(0, 1\]"):
            sampler.sample(InputRecorder(), reference, 3, start=torch.randn(1, 2, 1, 3, 4, 4), start_tau=bad)
