"""AdamW as every run builds it: the training module, `worldmodel-plan` and the GPU checks share this."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def adamw(params: Sequence[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
          weight_decay: float = 0.0, fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW over `params`, fused where every parameter is on a GPU (`fused=None`) or where asked.

    torch's default on CUDA is the foreach implementation, whose step takes the square root of all second moments
    at once: a temporary as large as every trainable parameter together. For sd3_medium long that is 13.3 GiB on
    top of weights, gradients and AdamW state (80.7 GiB measured at the step's peak on an H200, against 69.7 GiB
    without it; BENCHMARKS.md). The fused kernel updates each parameter in place, without that temporary.
    """
    params = list(params)
    if fused is None:
        fused = bool(params) and all(p.device.type == "cuda" for p in params)
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=fused or None)
