"""MR as the paper trains it: both passes every step, configurable weights, both branches on every call."""
from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from worldmodel.config import compose_config
from worldmodel.diffusion import RectifiedFlow
from worldmodel.model.masking import MaskPlan


def _tiny_mr(objective: list[str]) -> tuple[torch.nn.Module, RectifiedFlow]:
    cfg = compose_config("train", ["model=tiny", "objective=rectified_flow_mr", *objective])
    torch.manual_seed(0)
    return instantiate(cfg.model, _convert_="all").train(), instantiate(cfg.objective, _convert_="all")


def _count_passes(model: torch.nn.Module) -> dict[str, int]:
    """Counts the model's full-grid and packed (masked) forwards from here on."""
    counts = {"full_grid": 0, "packed": 0}

    def hook(module, args, kwargs):
        counts["packed" if kwargs.get("mask_plan") is not None else "full_grid"] += 1

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return counts


def _step(model: torch.nn.Module, flow: RectifiedFlow, seed: int = 0) -> tuple[torch.Tensor, dict]:
    latents = torch.randn(2, 3, 1, model.config.in_channels, 4, 8, generator=torch.Generator().manual_seed(seed))
    return flow.training_loss(model, latents, torch.tensor([1, 2]), torch.randn(2, 19),
                              torch.ones(2, 5, dtype=torch.bool), generator=torch.Generator().manual_seed(seed))


def test_the_mr_objective_trains_the_full_grid_and_the_masked_pass_every_step() -> None:
    model, flow = _tiny_mr([])
    assert flow.also_unmasked_pass and flow.mr_probability == 1.0
    counts = _count_passes(model)
    loss, logs = _step(model, flow)
    assert counts == {"full_grid": 1, "packed": 1}
    torch.testing.assert_close(loss, logs["loss_unmasked"] + logs["loss_masked"])
    loss.backward()
    # The full-grid path (the one sampling uses) gets a gradient; so does the reconstruction module.
    assert model.proj_out.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.reconstruction.parameters())


def test_masked_only_is_one_packed_pass_for_ablations() -> None:
    model, flow = _tiny_mr(["objective.also_unmasked_pass=false"])
    counts = _count_passes(model)
    _, logs = _step(model, flow)
    assert counts == {"full_grid": 0, "packed": 1} and "loss_unmasked" not in logs


def test_the_recipes_loss_is_the_sum_of_its_two_passes() -> None:
    model, flow = _tiny_mr([])
    loss, logs = _step(model, flow)
    torch.testing.assert_close(loss, logs["loss_unmasked"] + logs["loss_masked"])


@pytest.mark.parametrize("time_mask", [False, True])
def test_both_reconstruction_branches_get_gradients_whatever_the_clips_drew(time_mask: bool) -> None:
    """A rank whose clips all drew one mask kind still runs (and reduces) the other branch."""
    model, flow = _tiny_mr([])
    plan_of = flow.mask_plan

    def one_kind(model, eps, generator=None) -> MaskPlan:
        plan = plan_of(model, eps, generator)
        return MaskPlan(plan.keep, torch.full_like(plan.time_mask, time_mask), plan.mask_noise, plan.grid_width)

    flow.mask_plan = one_kind
    loss, _ = _step(model, flow)
    loss.backward()
    for branch in (model.reconstruction.spatial, model.reconstruction.temporal):
        assert all(p.grad is not None for p in branch.parameters())
    # The branch no clip-view took contributes exactly nothing.
    unused = model.reconstruction.spatial if time_mask else model.reconstruction.temporal
    assert all(float(p.grad.abs().max()) == 0.0 for p in unused.parameters())


def test_rows_that_drew_no_mr_weigh_zero_in_the_masked_pass() -> None:
    """mr_probability < 1 still runs the masked pass on every row; the loss is each row's own pass."""
    model, flow = _tiny_mr(["objective.mr_probability=0.5", "objective.also_unmasked_pass=false"])
    counts = _count_passes(model)
    for seed in range(4):
        _step(model, flow, seed)
    assert counts == {"full_grid": 4, "packed": 4}
