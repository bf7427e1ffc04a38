"""Random draws from one generator for the whole batch, or from one generator per sample.

One generator per sample makes a sample's noise, time and masks a function of that sample alone:
the same clip gets the same draws whether it trains in a batch of 2 on each of 2 ranks or in a
batch of 4 on one, and a resumed run redraws exactly what the uninterrupted one drew.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator] | None


def per_sample(generator: Generators) -> bool:
    """True when `generator` is a sequence holding one generator per batch row."""
    return generator is not None and not isinstance(generator, torch.Generator)


def rand(shape: Sequence[int], device: torch.device | str, generator: Generators = None) -> torch.Tensor:
    """Uniform [0, 1) of `shape` (B, ...); row i from generator i when there is one per sample."""
    if not per_sample(generator):
        return torch.rand(tuple(shape), device=device, generator=generator)
    _check_rows(shape, generator)
    return torch.stack([torch.rand(tuple(shape[1:]), device=device, generator=g) for g in generator])


def randn(shape: Sequence[int], device: torch.device | str, dtype: torch.dtype = torch.float32,
          generator: Generators = None) -> torch.Tensor:
    """Standard normal of `shape` (B, ...); row i from generator i when there is one per sample."""
    if not per_sample(generator):
        return torch.randn(tuple(shape), device=device, dtype=dtype, generator=generator)
    _check_rows(shape, generator)
    return torch.stack([torch.randn(tuple(shape[1:]), device=device, dtype=dtype, generator=g) for g in generator])


def _check_rows(shape: Sequence[int], generators: Sequence[torch.Generator]) -> None:
    if len(generators) != shape[0]:
        raise ValueError(f"{len(generators)} per-sample generators for a batch of {shape[0]}")
