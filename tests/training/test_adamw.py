"""AdamW as runs build it: fused on GPUs, and the foreach kernel's one temporary of all trainable parameters, which
the planner sees too (it was 13.3 GiB of an 80.7 GiB peak on an H200 before runs switched to the fused kernel)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from worldmodel.config import compose_config
from worldmodel.plan.fake_step import measure_training_step
from worldmodel.training.adamw import adamw


def test_cpu_parameters_take_torchs_default_and_fused_is_taken_when_asked() -> None:
    params = list(nn.Linear(4, 3).parameters())
    assert adamw(params, lr=1e-3).defaults["fused"] is None
    fused = adamw(params, lr=1e-3, betas=(0.8, 0.9), weight_decay=0.1, fused=True)
    assert fused.defaults["fused"] is True
    assert (fused.defaults["betas"], fused.defaults["weight_decay"]) == ((0.8, 0.9), 0.1)


def test_fused_and_default_kernels_take_the_same_step() -> None:
    torch.manual_seed(0)
    a, b = nn.Linear(16, 8), nn.Linear(16, 8)
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 16)
    for model, fused in ((a, None), (b, True)):
        optimizer = adamw(list(model.parameters()), lr=1e-2, weight_decay=0.01, fused=fused)
        for _ in range(3):
            model(x).square().mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_the_planner_counts_the_foreach_kernels_temporary() -> None:
    # `base` (460 M parameters) on two small frames: weights and AdamW state outweigh the activations, so the
    # foreach step's peak is the optimiser's, as at the paper's size.
    cfg = compose_config("train", ["experiment=quickstart_mr", "ema.enabled=false", "model=base",
                                   "data.batch_size=1", "data.clip.num_frames=2", "data.clip.size=[64,128]"])
    fused, foreach = measure_training_step(cfg), measure_training_step(cfg, adamw_kernel="foreach")
    # At that peak the optimiser holds its two moments and the square root of the second one, all float32.
    assert foreach.peak.optimizer - fused.peak.optimizer == pytest.approx(fused.trainable_bytes, rel=0.001)
    assert foreach.peak.total > fused.peak.total
    with pytest.raises(ValueError, match="adamw_kernel must be fused or foreach, got 'sgd'"):
        measure_training_step(cfg, adamw_kernel="sgd")
