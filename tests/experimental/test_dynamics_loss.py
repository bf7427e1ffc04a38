"""Vista's dynamics loss on the shelf: the weight map's golden values and the term it adds to the objective."""
from __future__ import annotations

import pytest
import torch

from tests.diffusion.test_rectified_flow import LinearVelocity, clip
from worldmodel.diffusion import RectifiedFlow
from worldmodel.experimental.dynamics_loss import DynamicsLoss, dynamics_error


def test_dynamics_error_weights_where_the_predicted_change_is_wrong():
    z0 = torch.zeros(1, 3, 1, 2, 1, 2)  # two positions per frame
    tau = torch.tensor([[0.0, 1.0, 1.0]])
    is_reference = torch.tensor([[True, False, False]])
    z_tau = torch.zeros_like(z0)
    # Velocity whose clean estimate z_tau - tau v is right everywhere but position 1 of frame 1.
    velocity = torch.zeros_like(z0)
    velocity[0, 1, 0, :, 0, 1] = -1.0  # estimate +1 on both channels there
    err_map = torch.ones_like(z0)
    out = dynamics_error(err_map, velocity, z_tau, z0, tau, is_reference)
    assert out.shape == (1, 3) and out[0, 0] == 0
    # Frame 1: the change from frame 0 is wrong at position 1 only, weight (2, normalised to mean 1) -> 0, 2.
    # Frame 2: the change from frame 1 is wrong at position 1 too. Both average to 1 with unit errors.
    assert torch.allclose(out, torch.tensor([[0.0, 1.0, 1.0]]))
    err_map[0, 1, 0, :, 0, 0] = 5.0  # error where the change is right does not count
    assert torch.allclose(dynamics_error(err_map, velocity, z_tau, z0, tau, is_reference)[0, 1], torch.tensor(1.0))
    err_map[0, 1, 0, :, 0, 1] = 3.0  # error where it is wrong counts twice (weight 2 at one of 2 positions)
    assert torch.allclose(dynamics_error(err_map, velocity, z_tau, z0, tau, is_reference)[0, 1], torch.tensor(3.0))


def test_the_added_term_is_linear_in_its_weight_and_trains() -> None:
    latents = clip(b=2, t=4)
    num_reference = torch.tensor([1, 2])

    def loss_with(*extensions):
        model = LinearVelocity()
        loss, _ = RectifiedFlow(extensions=list(extensions)).training_loss(
            model, latents, num_reference, generator=torch.Generator().manual_seed(2))
        return loss, model

    base, _ = loss_with()
    half, _ = loss_with(DynamicsLoss(weight=0.5))
    full, model = loss_with(DynamicsLoss(weight=1.0))
    # The same draws, so the plain MSE is the same; the extra term is a weighted MSE, positive unless exact.
    assert half > base
    torch.testing.assert_close(full - base, 2 * (half - base), rtol=1e-5, atol=1e-7)
    full.backward()
    assert model.w.grad is not None and model.w.grad.abs() > 0
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"extension.dynamics_loss.weight must be > 0"):
            DynamicsLoss(weight=bad)
