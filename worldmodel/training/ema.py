"""Exponential moving average of model weights, kept as a frozen copy of the model."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMAWeights(nn.Module):
    """Holds `shadow`, a frozen copy of a model whose weights trail the live ones.

    The copy is a registered submodule, so Lightning saves and restores it with the rest of
    the state, and rollout/eval export it instead of the noisier live weights.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema.decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.shadow = copy.deepcopy(model).requires_grad_(False).eval()
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        # A host copy of num_updates for the decay: reading the buffer at every step would make the host wait for
        # the GPU (a sync per step). Loading a state dict refreshes it from the buffer.
        self._updates = 0
        self.register_load_state_dict_post_hook(lambda module, incompatible_keys: module._read_count())

    def _read_count(self) -> None:
        self._updates = int(self.num_updates)

    def current_decay(self) -> float:
        """Decay for the next update; warm-up keeps early averages from clinging to the init."""
        n = self._updates
        if not self.warmup:
            return self.decay
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """shadow <- decay * shadow + (1 - decay) * model, for parameters and float buffers."""
        weight = 1.0 - self.current_decay()
        live = dict(model.named_parameters())
        shadow_params = [p for name, p in self.shadow.named_parameters() if name in live]
        live_params = [live[name].detach().to(p.dtype) for name, p in self.shadow.named_parameters() if name in live]
        if shadow_params:
            torch._foreach_lerp_(shadow_params, live_params, weight)
        for (_, s), (_, b) in zip(self.shadow.named_buffers(), model.named_buffers()):
            s.copy_(b)
        self.num_updates += 1
        self._updates += 1

    def train(self, mode: bool = True) -> EMAWeights:
        """The shadow always stays in eval mode (no dropout, no MR)."""
        super().train(mode)
        self.shadow.eval()
        return self
