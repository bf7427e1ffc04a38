"""Peak bytes of live tensor storage while a block of code runs without autograd (sampling), on fake tensors.

torch's `MemTracker` attributes memory to training's kinds through gradient hooks, which inference (no
gradients, frozen weights) does not run; this counts what sampling needs: every storage an operator creates
or the caller registers, from its creation until it is freed, rounded as the CUDA caching allocator rounds
(512 bytes), and the largest total at any moment.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

ALLOCATION_ROUNDING = 512


def _rounded(nbytes: int) -> int:
    return -(-nbytes // ALLOCATION_ROUNDING) * ALLOCATION_ROUNDING


class PeakLiveBytes(TorchDispatchMode):
    """`with PeakLiveBytes() as live: ...` then `live.peak` (bytes); `track(module_or_tensor, ...)` first counts
    storage made before the block (weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._refs: dict[int, weakref.ref] = {}

    def track(self, *objects: nn.Module | torch.Tensor) -> None:
        for obj in objects:
            tensors = list(obj.parameters()) + list(obj.buffers()) if isinstance(obj, nn.Module) else [obj]
            for tensor in tensors:
                self._add(tensor)

    def _add(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._refs and self._refs[key]() is not None:
            return
        size = _rounded(storage.nbytes())

        def freed(_: Any, key: int = key, size: int = size) -> None:
            self._refs.pop(key, None)
            self.current -= size

        self._refs[key] = weakref.ref(storage, freed)
        self.current += size
        self.peak = max(self.peak, self.current)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                self._add(value)
        return out
