"""Run-time choices shared by worldmodel-rollout, -eval and -sim: device, sampling precision, sampler overrides.

Below all three, so that none of them imports another's driver for these.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

PRECISIONS = ("auto", "fp32", "bf16", "bf16-true")


@dataclass(frozen=True)
class SamplingPrecision:
    """How the network runs while sampling.

    `autocast`: the dtype of its matrix products and attention (None: float32 throughout). `weights`: the dtype
    its weights are stored in (None: as trained, float32). `bf16-true` stores them in bfloat16, halving the
    largest block of sampling memory; autocast stays on, so the ops autocast keeps in float32 (norms, softmax)
    still get float32 inputs, and the sampler's own arithmetic (velocity, guidance, Euler step) is float32 either
    way. The codec keeps float32 weights: it is small next to the network.
    """

    autocast: torch.dtype | None
    weights: torch.dtype | None = None

    @property
    def label(self) -> str:
        """What manifests, reports and plans record, e.g. `bfloat16 autocast, float32 weights`."""
        if self.autocast is None:
            return "float32"
        weights = self.weights or torch.float32
        return f"{_short(self.autocast)} autocast, {_short(weights)} weights"

    @property
    def fingerprint(self) -> str:
        """The evaluation-resume key. Float32-weight runs keep the key earlier versions wrote (`None` or
        `torch.bfloat16`), so their evaluations still resume; bf16 weights give a key of their own."""
        return str(self.autocast) if self.weights is None else f"{self.autocast}+weights={self.weights}"


def _short(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def sampling_precision(name: str, device: torch.device) -> SamplingPrecision:
    """`auto`: bf16 autocast on a GPU, float32 on the CPU; `fp32`; `bf16` (autocast, float32 weights);
    `bf16-true` (autocast and bfloat16 weights)."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "bf16-true":
        return SamplingPrecision(torch.bfloat16, torch.bfloat16)
    if name == "bf16" or (name == "auto" and device.type == "cuda"):
        return SamplingPrecision(torch.bfloat16)
    return SamplingPrecision(None)


def pick_device(name: str) -> torch.device:
    """`auto`: cuda when one is available, else the CPU; otherwise the device named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def with_sampler_overrides(sampler: Any, num_steps: int | None = None, cfg_scale: float | None = None,
                           churn: float | None = None, reference_noise: float | None = None) -> Any:
    """The checkpoint's sampler with `num_steps` / `cfg_scale` / `churn` / `reference_noise` replaced where they
    are not None (a new sampler, validated as at construction; the checkpoint's own is left as it is)."""
    changes = {k: v for k, v in (("num_steps", num_steps), ("cfg_scale", cfg_scale), ("churn", churn),
                                 ("reference_noise", reference_noise)) if v is not None}
    if reference_noise is not None and "reference_noise" not in sampler.settings():
        raise ValueError(f"reference_noise={reference_noise} is for models trained with extension=reference_noise "
                         f"(their sampler noises the references); this checkpoint's sampler is "
                         f"{type(sampler).__name__}: leave reference_noise out")
    return sampler.replace(**changes)
