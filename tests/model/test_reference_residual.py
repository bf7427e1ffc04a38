"""prediction=reference_residual: the output is the clean frame, built on the latest reference frame."""
from __future__ import annotations

import pytest
import torch

from tests.model.test_maskgwm import tiny_model
from worldmodel.diffusion.prediction import latest_reference, output_to_velocity


def test_latest_reference_picks_the_last_reference_at_or_before_each_frame() -> None:
    latents = (torch.arange(6.0) + 1).reshape(1, 6, 1)
    is_reference = torch.tensor([[False, True, False, True, False, False]])
    assert latest_reference(latents, is_reference).flatten().tolist() == [0.0, 2.0, 2.0, 4.0, 4.0, 4.0]
    none = torch.zeros(1, 6, dtype=torch.bool)
    assert latest_reference(latents, none).abs().sum() == 0


def test_an_untrained_output_layer_holds_the_last_reference_still() -> None:
    model = tiny_model(prediction="reference_residual")
    with torch.no_grad():
        model.proj_out.weight.zero_()
        model.proj_out.bias.zero_()
    latents = torch.randn(2, 5, 1, 16, 8, 16)  # (B, T, V, C, H, W)
    is_reference = torch.tensor([[True, True, False, False, False], [True, False, False, False, False]])
    tau = torch.where(is_reference, 0.0, 0.7)
    with torch.no_grad():
        out = model(latents, tau, is_reference=is_reference)
    torch.testing.assert_close(out[0, 2:], latents[0, 1:2].expand(3, -1, -1, -1, -1))
    torch.testing.assert_close(out[1, 1:], latents[1, 0:1].expand(4, -1, -1, -1, -1))
    # Converted like sample prediction: the velocity that carries z_tau onto the reference.
    velocity = output_to_velocity(out, latents, tau, "reference_residual")
    torch.testing.assert_close(velocity[0, 2], (latents[0, 2] - latents[0, 1]) / 0.7)


def test_the_residual_needs_matching_channels() -> None:
    with pytest.raises(Exception, match=r"out_channels \(32\) must equal in_channels \(16\)"):
        tiny_model(prediction="reference_residual", out_channels=32)
