"""What a network's output means, and the velocity it implies on the straight rectified-flow path.

`velocity`: the output is eps - z0 itself (SD3, the paper). `sample`: the output is the clean z0,
and the velocity follows from z_tau = (1 - tau) z0 + tau eps as (z_tau - z0_hat) / tau. A network
whose hidden size is smaller than its token's patch (the tiny preset on the 48-channel pixel codec:
192 values per token, 96 hidden) cannot carry the noise through its bottleneck to output eps - z0,
but it can output the clean, low-dimensional image: x-prediction with a velocity loss (Li & He,
"Back to Basics: Let Denoising Generative Models Denoise", 2025).
"""
from __future__ import annotations

import torch
from torch import nn

PREDICTIONS = ("velocity", "sample")
# The 1 / tau of sample prediction is capped here so that nearly clean frames do not blow up the loss.
MIN_TAU = 0.05


def prediction_of(model: nn.Module) -> str:
    """The model's `prediction` config entry; modules without one predict the velocity."""
    config = getattr(model, "config", None)
    return getattr(config, "prediction", "velocity") if config is not None else "velocity"


def output_to_velocity(output: torch.Tensor, z_tau: torch.Tensor, tau: torch.Tensor, prediction: str) -> torch.Tensor:
    """output, z_tau (B, T, ...) and tau (B, T) -> velocity eps - z0 (B, T, ...)."""
    if prediction == "velocity":
        return output
    if prediction != "sample":
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    tau = tau.reshape(*tau.shape, *([1] * (z_tau.dim() - tau.dim()))).to(output.dtype)  # (B, T, 1, ...)
    return (z_tau.to(output.dtype) - output) / tau.clamp(min=MIN_TAU)
