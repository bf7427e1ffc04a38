"""An analytic FLOP count of one real CPU training step, independent of torch's FLOP counter.

Every matrix product of the network is a Linear or a convolution (2 x output elements x fan-in each) or an
attention call (2 b h s_q s_k (d_q + d_v) forward). The step runs for real with hooks recording each call's
shapes; the backward pass is then derived from the forward records: a layer's input gradient costs its forward
again where its input needs a gradient, its weight gradient the same again where the weight trains, and a fused
attention kernel's backward 2.5 times its forward (the scores recomputed, four products). Calls made while the
backward pass runs are activation-checkpoint recomputations, which model FLOPs leave out.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from worldmodel.training.trainable import freeze_idle_groups
from worldmodel.viz import from_uint8


class _Ledger:
    def __init__(self) -> None:
        self.forward = 0.0
        self.backward = 0.0
        self.in_backward = False

    def layer(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if self.in_backward:
            return
        if isinstance(module, nn.Linear):
            fan_in = module.in_features
        else:  # a convolution: per output element, in_channels / groups x kernel volume products
            fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
        flops = 2.0 * output.numel() * fan_in
        self.forward += flops
        if torch.is_grad_enabled():
            self.backward += flops * (int(inputs[0].requires_grad) + int(module.weight.requires_grad))

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        if self.in_backward:
            return
        batch_heads = math.prod(q.shape[:-2])
        flops = 2.0 * batch_heads * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])
        self.forward += flops
        if torch.is_grad_enabled() and q.requires_grad:
            self.backward += 2.5 * flops


def analytic_training_step_flops(cfg: DictConfig, monkeypatch: pytest.MonkeyPatch) -> float:
    """Forward plus backward FLOPs of one training step of `cfg` (the codec's encode included), counted by hand."""
    torch.manual_seed(0)
    model = instantiate(cfg.model, _convert_="all").train()
    objective = instantiate(cfg.objective, _convert_="all")
    freeze_idle_groups(model, objective)
    if cfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    codec = instantiate(cfg.codec, _convert_="all")
    ledger = _Ledger()
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            module.register_forward_hook(ledger.layer)
    sdpa = F.scaled_dot_product_attention

    def counted_sdpa(q, k, v, *args, **kwargs):
        ledger.attention(q, k, v)
        return sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counted_sdpa)
    b, t = int(cfg.data.batch_size), int(cfg.data.clip.num_frames)
    v = int(model.config.num_views)
    h, w = (int(x) for x in cfg.data.clip.size)
    with torch.no_grad():
        latents = codec.encode_video(from_uint8(torch.zeros(b, t, v, h, w, 3, dtype=torch.uint8)))
    # The DCT codec's encode is one product per block: (b t v h w / f^2 blocks) x (3 f^2) x channels.
    encode = 2.0 * b * t * v * h * w * 3 * latents.shape[3]
    num_reference = torch.full((b,), max(int(c) for c in cfg.reference_frames.choices), dtype=torch.long)
    loss, _ = objective.training_loss(model, latents, num_reference, torch.zeros(b, 19),
                                      torch.ones(b, 5, dtype=torch.bool))
    ledger.in_backward = True
    loss.backward()
    return ledger.forward + ledger.backward + encode
