"""Tests for worldmodel.diffusion.RectifiedFlow: path, timestep sampling, action dropout, loss masking."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from tests.model.test_maskgwm import tiny_preset
from worldmodel.config import compose_config
from worldmodel.diffusion import RectifiedFlow

CONF = Path(__file__).resolve().parents[2] / "conf"


class LinearVelocity(nn.Module):
    """A one-parameter 'network' v = w * z that records what the objective hands it."""

    def __init__(self, reference_offset: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.reference_offset = reference_offset
        self.calls = []

    def forward(self, latents, tau, actions=None, action_valid=None, is_reference=None, **kwargs):
        self.calls.append({"latents": latents, "tau": tau, "action_valid": action_valid,
                           "is_reference": is_reference})
        out = self.w * latents
        return out + self.reference_offset * is_reference[:, :, None, None, None, None].float()


def clip(b=4, t=5, seed=0):
    return torch.randn(b, t, 1, 2, 3, 3, generator=torch.Generator().manual_seed(seed))


def test_add_noise_and_target_golden_values():
    z0 = torch.full((1, 2, 1, 1, 1, 1), 2.0)
    eps = torch.full_like(z0, -1.0)
    tau = torch.tensor([[0.25, 1.0]])
    z = RectifiedFlow.add_noise(z0, eps, tau)
    assert torch.allclose(z.flatten(), torch.tensor([0.75 * 2.0 + 0.25 * -1.0, -1.0]))
    assert torch.equal(RectifiedFlow.target(z0, eps), torch.full_like(z0, -3.0))
    assert torch.equal(RectifiedFlow.add_noise(z0, eps, torch.zeros(1, 2)), z0)


def test_logit_normal_statistics():
    gen = torch.Generator().manual_seed(0)
    tau = RectifiedFlow(logit_mean=0.5, logit_std=0.8).sample_tau(200_000, generator=gen)
    assert ((tau > 0) & (tau < 1)).all()
    logits = torch.logit(tau.double())
    assert abs(logits.mean().item() - 0.5) < 0.01
    assert abs(logits.std().item() - 0.8) < 0.01
    uniform = RectifiedFlow(time_sampling="uniform").sample_tau(200_000, generator=gen)
    assert abs(uniform.mean().item() - 0.5) < 0.01
    with pytest.raises(ValueError, match="time_sampling"):
        RectifiedFlow(time_sampling="cosine")


def test_per_group_dropout_rate():
    flow = RectifiedFlow(action_dropout=0.15)
    valid = torch.ones(40_000, 5, dtype=torch.bool)
    valid[:, 4] = False  # a group the dataset does not have stays dropped
    kept = flow.drop_actions(valid, torch.Generator().manual_seed(0)).float()
    assert torch.allclose(kept[:, :4].mean(dim=0), torch.full((4,), 0.85), atol=0.01)
    assert kept[:, 4].eq(0).all()
    # Groups are dropped independently: the joint keep rate of two groups is 0.85 ** 2.
    assert abs((kept[:, 0] * kept[:, 1]).mean().item() - 0.85 ** 2) < 0.01


def test_reference_frames_are_clean_and_predicted_frames_share_tau():
    flow = RectifiedFlow()
    model = LinearVelocity()
    latents = clip()
    num_reference = torch.tensor([0, 1, 2, 3])
    flow.training_loss(model, latents, num_reference, torch.randn(4, 19), None,
                       generator=torch.Generator().manual_seed(0))
    call = model.calls[0]
    expected = torch.arange(5)[None] < num_reference[:, None]
    assert torch.equal(call["is_reference"], expected)
    assert call["tau"][expected].eq(0).all()
    assert torch.equal(call["latents"][expected], latents[expected])
    for i in range(4):
        predicted = call["tau"][i][~expected[i]]
        assert (predicted == predicted[0]).all() and predicted[0] > 0
    assert call["action_valid"].shape == (4, 5) and call["action_valid"].dtype == torch.bool


def test_reference_frames_excluded_from_loss():
    latents = clip()
    num_reference = torch.tensor([1, 2, 0, 3])
    losses = {}
    for offset in (0.0, 100.0):
        # LinearVelocity's offset lands on the reference frames only; the loss must not see it.
        loss, _ = RectifiedFlow().training_loss(LinearVelocity(offset), latents, num_reference,
                                                generator=torch.Generator().manual_seed(3))
        losses[offset] = loss.item()
    assert losses[0.0] == losses[100.0]


def test_loss_is_the_mse_of_predicted_frames():
    latents = clip(b=2, t=3)
    flow = RectifiedFlow()
    model = LinearVelocity()
    gen = torch.Generator().manual_seed(7)
    loss, logs = flow.training_loss(model, latents, torch.tensor([1, 0]), generator=gen)
    # Replay the same draws: tau first, then eps.
    gen = torch.Generator().manual_seed(7)
    tau = flow.sample_tau(2, generator=gen)
    eps = torch.randn(latents.shape, generator=gen)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    tau_frames = torch.where(mask, tau[:, None], torch.zeros(2, 3))
    pred = 0.5 * flow.add_noise(latents, eps, tau_frames)
    expected = (pred - (eps - latents))[mask].square().mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert logs["loss"] == loss.detach() and "action_keep_rate" not in logs


def test_loss_trains_the_tiny_model():
    torch.manual_seed(0)
    model = instantiate(tiny_preset())
    flow = instantiate(OmegaConf.load(CONF / "objective" / "rectified_flow.yaml"))
    latents = torch.randn(2, 3, 1, 16, 8, 8)
    loss, logs = flow.training_loss(model, latents, torch.tensor([1, 2]), torch.randn(2, 19),
                                    torch.ones(2, 5, dtype=torch.bool), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss > 0
    assert 0.0 <= logs["action_keep_rate"] <= 1.0
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert grads["proj_out.weight"].abs().sum() > 0
    assert grads["temporal_blocks.0.adaLN_modulation.1.weight"].abs().sum() > 0


#################################################################################
#                             Mask reconstruction                               #
#################################################################################

class PlanRecorder(nn.Module):
    """v = w * z, plus `masked_offset` on rows that came with a mask plan; records every call's plan."""

    def __init__(self, masked_offset: float = 0.0, patch_size: int = 1):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.reconstruction = nn.Identity()  # marks MR support, as MaskGWM's module does
        self.config = SimpleNamespace(patch_size=patch_size)
        self.masked_offset = masked_offset
        self.calls = []

    def forward(self, latents, tau, actions=None, action_valid=None, is_reference=None, mask_plan=None):
        self.calls.append({"latents": latents, "tau": tau, "plan": mask_plan})
        return self.w * latents + (self.masked_offset if mask_plan is not None else 0.0)


def mr_clip(b=6, t=3, seed=0):
    return torch.randn(b, t, 2, 2, 4, 8, generator=torch.Generator().manual_seed(seed))


def test_mr_plan_covers_every_sample_and_carries_the_noise_of_z_tau():
    flow = RectifiedFlow(mr_probability=1.0, mask_ratio=0.25, spatial_mask_prob=0.5)
    model = PlanRecorder()
    latents = mr_clip()
    _, logs = flow.training_loss(model, latents, torch.tensor([0, 1, 2, 0, 1, 2]),
                                 generator=torch.Generator().manual_seed(0))
    assert len(model.calls) == 1 and logs["mr_fraction"] == 1.0
    call = model.calls[0]
    plan = call["plan"]
    assert plan.keep.shape == (6, 3, 2, 4, 6) and plan.time_mask.shape == (6, 2)
    # z_tau = (1 - tau) z0 + tau eps with the plan's eps on the noised frames.
    tau = call["tau"][:, :, None, None, None, None]
    assert torch.allclose(call["latents"], (1 - tau) * latents + tau * plan.mask_noise, atol=1e-6)


def test_no_mr_in_eval_mode_or_when_off():
    latents = mr_clip()
    for flow, train in ((RectifiedFlow(mr_probability=1.0), False), (RectifiedFlow(), True)):
        model = PlanRecorder().train(train)
        _, logs = flow.training_loss(model, latents, torch.zeros(6, dtype=torch.long))
        assert [c["plan"] for c in model.calls] == [None]
        assert "mr_fraction" not in logs


def test_mixed_batch_runs_both_passes_on_every_row_and_keeps_each_rows_own():
    latents = mr_clip(b=8)
    num_reference = torch.tensor([0, 1] * 4)
    flow = RectifiedFlow(mr_probability=0.5)
    model = PlanRecorder(masked_offset=10.0)
    loss, logs = flow.training_loss(model, latents, num_reference, generator=torch.Generator().manual_seed(1))
    # The same two passes whatever the rows drew (DDP / FSDP ranks must run the same modules), each on all rows.
    masked_call, plain_call = model.calls
    assert masked_call["plan"] is not None and plain_call["plan"] is None
    assert masked_call["tau"].shape[0] == plain_call["tau"].shape[0] == 8
    # Replay the draws (tau, eps, then the MR draw) to check which rows were masked and the loss.
    gen = torch.Generator().manual_seed(1)
    tau = flow.sample_tau(8, generator=gen)
    eps = torch.randn(latents.shape, generator=gen)
    masked = torch.rand(8, generator=gen) < 0.5
    assert 0 < masked.sum() < 8 and logs["mr_fraction"] == masked.float().mean()
    is_ref = torch.arange(3)[None] < num_reference[:, None]
    tau_frames = torch.where(is_ref, 0.0, tau[:, None])
    pred = 0.5 * flow.add_noise(latents, eps, tau_frames) + 10.0 * masked[:, None, None, None, None, None]
    # The loss averages every predicted frame once, from the masked pass on masked rows, the plain one elsewhere.
    expected = (pred - (eps - latents)).square().mean(dim=(2, 3, 4, 5))[~is_ref].mean()
    assert torch.allclose(loss, expected, atol=1e-5)


def test_also_unmasked_pass_adds_the_full_pass_loss():
    latents = mr_clip()
    num_reference = torch.zeros(6, dtype=torch.long)
    losses = {}
    for offset in (0.0, 10.0):
        flow = RectifiedFlow(mr_probability=1.0, also_unmasked_pass=True)
        model = PlanRecorder(masked_offset=offset)
        losses[offset], logs = flow.training_loss(model, latents, num_reference,
                                                  generator=torch.Generator().manual_seed(2))
        assert [c["plan"] is None for c in model.calls] == [False, True]
        assert torch.allclose(losses[offset], logs["loss_unmasked"] + logs["loss_masked"])
    assert losses[10.0] > losses[0.0] + 50.0


def test_mr_needs_a_model_with_reconstruction_and_valid_options():
    with pytest.raises(ValueError, match="mask_reconstruction"):
        RectifiedFlow(mr_probability=1.0).training_loss(LinearVelocity(), clip(), torch.zeros(4, dtype=torch.long))
    for kwargs, name in (({"mask_ratio": 1.0}, "mask_ratio"), ({"mr_probability": 2.0}, "mr_probability"),
                         ({"spatial_mask_prob": -0.1}, "spatial_mask_prob")):
        with pytest.raises(ValueError, match=name):
            RectifiedFlow(**kwargs)


def test_mr_objective_trains_the_tiny_mview_model():
    torch.manual_seed(0)
    cfg = compose_config("train", ["model=tiny_mview", "objective=rectified_flow_mr"])
    model = instantiate(cfg.model, _convert_="all").train()
    flow = instantiate(cfg.objective, _convert_="all")
    assert flow.mr_probability == 1.0 and flow.mask_ratio == 0.25
    latents = torch.randn(2, 3, 6, 16, 8, 16)
    loss, logs = flow.training_loss(model, latents, torch.tensor([1, 0]), torch.randn(2, 19),
                                    torch.ones(2, 5, dtype=torch.bool), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and logs["mr_fraction"] == 1.0
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["mask_token.token"].abs().sum() > 0
    assert grads["view_blocks.0.adaLN_modulation.1.weight"].abs().sum() > 0
