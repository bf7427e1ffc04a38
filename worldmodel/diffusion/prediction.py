"""What a network's output means, and the velocity it implies on the straight rectified-flow path.

`velocity`: the output is eps - z0 itself (SD3, the paper). `sample`: the output is the clean z0,
and the velocity follows from z_tau = (1 - tau) z0 + tau eps as (z_tau - z0_hat) / tau. A network
whose hidden size is smaller than its token's patch (the tiny preset on the 48-channel pixel codec:
192 values per token, 96 hidden) cannot carry the noise through its bottleneck to output eps - z0,
but it can output the clean, low-dimensional image: x-prediction with a velocity loss (Li & He,
"Back to Basics: Let Denoising Generative Models Denoise", 2025).
`preconditioned`: the clean z0 as EDM's preconditioning writes it (Karras et al. 2022, section 5),
z0_hat = c_skip z_tau + c_out F, with c_skip and c_out the coefficients of the best linear guess of z0
from z_tau for data of spread `sigma_data` (s) on the rectified-flow path:
    var = (1 - tau)^2 s^2 + tau^2,  c_skip = (1 - tau) s^2 / var,  c_out = tau s / sqrt(var).
Nearly clean inputs then pass through (c_skip -> 1, c_out -> 0), so a small network's reconstruction
error no longer lands on every frame it is asked to finish; at tau = 1 it outputs z0 / s as `sample` does.
"""
from __future__ import annotations

import torch
from torch import nn

PREDICTIONS = ("velocity", "sample", "preconditioned")
# The 1 / tau of sample prediction is capped here so that nearly clean frames do not blow up the loss.
MIN_TAU = 0.05
# EDM's default spread of the data; the DCT codec's latents of procedural frames spread 0.54.
SIGMA_DATA = 0.5


def prediction_of(model: nn.Module) -> str:
    """The model's `prediction` config entry; modules without one predict the velocity."""
    config = getattr(model, "config", None)
    return getattr(config, "prediction", "velocity") if config is not None else "velocity"


def sigma_data_of(model: nn.Module) -> float:
    """The model's `sigma_data` config entry (used by `preconditioned` only); EDM's 0.5 without one."""
    config = getattr(model, "config", None)
    return float(getattr(config, "sigma_data", SIGMA_DATA)) if config is not None else SIGMA_DATA


def takes_warp(model: nn.Module) -> bool:
    """Whether the model's config has `warp_condition` on: it then wants each new frame's warp as an input
    (`MaskGWM.embed_warp`). Read here with the other config entries the objective and the samplers consult."""
    return bool(getattr(getattr(model, "config", None), "warp_condition", False))


def preconditioning(tau: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor]:
    """tau (...) -> (c_skip, c_out) (...): z0_hat = c_skip z_tau + c_out F (see the module docstring)."""
    s2 = sigma_data * sigma_data
    var = (1 - tau).square() * s2 + tau.square()
    return (1 - tau) * s2 / var, tau * sigma_data / var.sqrt()


def output_to_velocity(output: torch.Tensor, z_tau: torch.Tensor, tau: torch.Tensor, prediction: str,
                       sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """output, z_tau (B, T, ...) and tau (B, T) -> velocity eps - z0 (B, T, ...), float32.

    Always in float32, whatever the output's dtype or an enclosing autocast: (z_tau - z0_hat) / tau divides a
    difference of two nearly equal numbers by a small one, and in bfloat16 (8 mantissa bits) a perfect clean-frame
    prediction at tau = 0.05 already comes back with a velocity error of about 0.05 RMS.
    """
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    output = output.float()
    if prediction == "velocity":
        return output
    tau = tau.reshape(*tau.shape, *([1] * (z_tau.dim() - tau.dim()))).float()  # (B, T, 1, ...)
    z_tau = z_tau.float()
    if prediction == "preconditioned":
        c_skip, c_out = preconditioning(tau, sigma_data)
        output = c_skip * z_tau + c_out * output  # the clean-frame estimate
    return (z_tau - output) / tau.clamp(min=MIN_TAU)
