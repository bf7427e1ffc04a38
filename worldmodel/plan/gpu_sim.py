"""The GPU code path without a GPU: a training step and a rollout chunk of a run on fake `cuda` tensors in bf16.

    make gpu-sim                                   # builds .venv-gpu-sim (torch's CUDA build), runs the two recipes
    python -m worldmodel.plan.gpu_sim experiment=sd3_stage2_long   # any training config, Hydra overrides

Needs a CUDA build of torch (no GPU, no driver): under `FakeTensorMode` it makes fake `cuda` tensors, and bf16
autocast then runs CUDA's autocast op lists. What a real GPU run would trip on is found here:
- a tensor left on the CPU (any operation mixing it with a `cuda` tensor fails, naming both devices), and tensors
  that `.to(device)` would not move (plain tensor attributes of a module, neither parameter nor buffer);
- a dtype mismatch under bf16 autocast;
- a host sync (`.item()`, `float(t)`, `nonzero`, boolean-mask indexing, a copy to the CPU), named with its line by
  `HostSyncFinder`.

The network and codec are built on the CPU and moved, as Lightning moves them; the batch is moved as Lightning
moves it; everything else (objective, sampler, optimiser) is built as a run builds it. The training step is the
forward pass and the loss (MR's both passes), AdamW's step and the EMA update on `cuda`.
The backward pass is not run here: torch's autograd engine asks the CUDA driver for a context whatever the
tensors are, so it cannot run without one; it runs on fake CPU tensors in `worldmodel-plan`. The optimiser steps
on zero gradients of the trainable parameters' shapes. The rollout chunk is `RolloutEngine.sample_chunk` (all
Euler steps with CFG) and the codec's decode of the new frames, once with float32 weights (rollout's `auto` on a
GPU) and once with bfloat16 ones (`precision=bf16-true`). Prints one line per check; exits 1 on a finding.
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch._subclasses.fake_tensor import unset_fake_temporarily

from worldmodel.config import compose_config
from worldmodel.plan.codec import plannable_codec
from worldmodel.plan.fake_step import _clip_shape, _fake, _TrainingStep, build_for_plan, fake_to, step_inputs
from worldmodel.plan.host_sync import HostSyncFinder
from worldmodel.runtime import sampling_precision

RECIPES = (["experiment=sd3_stage2_long"], ["experiment=sd3_stage3_mview"])


@contextlib.contextmanager
def cuda_autocast_without_driver() -> Iterator[None]:
    """Let `torch.autocast("cuda", bfloat16)` turn on with no GPU. torch disables CUDA autocast when no device
    is present; on fake tensors there is nothing for a device to do, and the op lists are the same."""
    amp = torch.cuda.amp.common
    saved = amp.amp_definitely_not_available, torch.cuda.is_bf16_supported
    amp.amp_definitely_not_available = lambda: False
    torch.cuda.is_bf16_supported = lambda *args, **kwargs: True
    try:
        yield
    finally:
        amp.amp_definitely_not_available, torch.cuda.is_bf16_supported = saved


def unmoved_tensors(module: nn.Module) -> list[str]:
    """Tensor attributes that `module.to(device)` leaves where they are (neither parameter nor buffer)."""
    found = []
    for name, sub in module.named_modules():
        for attr, value in vars(sub).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                found.append(f"{name or type(module).__name__}.{attr} {tuple(value.shape)}")
    return found


def _on_the_host(schedule):
    """The sampler's time schedule is host arithmetic on a few CPU floats: it is computed on real tensors, as in
    a real run, not on fake ones (whose values cannot be read)."""
    def real_schedule(*args, **kwargs):
        with unset_fake_temporarily():
            return schedule(*args, **kwargs)
    return real_schedule


def _built_and_moved(cfg: DictConfig, codec: nn.Module, train: bool, weights: torch.dtype | None = None):
    """The network (built on the CPU, then moved, as Lightning does; its weights cast to `weights` where given,
    as `load_world_model` casts them) and the codec, on fake `cuda`; raises on tensor attributes that the move
    leaves behind. Call inside the fake mode, with the codec built outside it (a codec computes and checks
    constants when it is built)."""
    model = instantiate(cfg.model, _convert_="all").train(train)
    unmoved = unmoved_tensors(model) + unmoved_tensors(codec)
    if unmoved:
        raise AssertionError(f"tensors that .to(device) does not move: {unmoved}")
    return fake_to(model, "cuda", weights), fake_to(codec, "cuda")


def check_training_step(cfg: DictConfig) -> str:
    """Forward and loss under CUDA bf16 autocast, AdamW step and EMA update, all on fake `cuda` tensors."""
    from worldmodel.training.adamw import adamw
    from worldmodel.training.ema import EMAWeights
    from worldmodel.training.train import build_objective
    from worldmodel.training.trainable import freeze_idle_groups, select_trainable

    cfg, _ = build_for_plan(cfg)
    codec, encodes, _ = plannable_codec(cfg)
    with _fake():
        model, codec = _built_and_moved(cfg, codec, train=True)
        objective = build_objective(cfg)
        select_trainable(model, None if cfg.trainable is None else list(cfg.trainable))
        freeze_idle_groups(model, objective)
        if cfg.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        ema = EMAWeights(model, float(cfg.ema.decay)) if cfg.ema.enabled else None
        step = _TrainingStep(model, codec if encodes else None, objective)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = adamw(trainable, lr=1e-5)  # as the run builds it: fused, the parameters being on cuda
        # The batch as Lightning hands it to the step: moved to the device.
        inputs = [x.to("cuda") for x in step_inputs(cfg, model, codec, encodes)]
        with HostSyncFinder(), cuda_autocast_without_driver(), torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step(*inputs)
        if loss.device.type != "cuda" or loss.dtype != torch.float32:
            raise AssertionError(f"the loss is {loss.dtype} on {loss.device}, expected float32 on cuda")
        for p in trainable:
            p.grad = torch.zeros_like(p)
        with HostSyncFinder():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(model)
        devices = {p.device.type for p in model.parameters()} | {
            s.device.type for state in optimizer.state.values() for s in state.values() if s.ndim > 0}
        if devices != {"cuda"}:
            raise AssertionError(f"after the step, weights or optimiser state on {devices}")
        count = sum(p.numel() for p in trainable)
        return f"forward + loss + AdamW + EMA on cuda, {count / 1e6:,.0f} M trainable parameters"


def check_rollout_chunk(cfg: DictConfig, precision: str = "bf16") -> str:
    """One chunk of `RolloutEngine` (all Euler steps with CFG) and the decode, under bf16 autocast on `cuda`, as
    `worldmodel-rollout precision=PRECISION` runs it (`bf16`: float32 weights; `bf16-true`: bfloat16 weights)."""
    from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine

    chosen = sampling_precision(precision, torch.device("cuda"))
    cfg, _ = build_for_plan(cfg)
    codec = plannable_codec(cfg)[0]
    with _fake():
        model, codec = _built_and_moved(cfg, codec, train=False, weights=chosen.weights)
        model.requires_grad_(False)
        sampler = instantiate(cfg.sampler, _convert_="all")
        sampler.visited = _on_the_host(sampler.visited)
        _, t, v, h, w = _clip_shape(cfg, model)
        down = codec.downsample
        k = max(int(c) for c in cfg.reference_frames.choices)
        engine = RolloutEngine(model, sampler, ChunkSchedule(t, k, k, 1), autocast_dtype=chosen.autocast)
        refs = torch.randn(1, k, v, model.config.in_channels, h // down, w // down, device="cuda")
        values, valid = torch.zeros(1, 19, device="cuda"), torch.ones(1, 5, dtype=torch.bool, device="cuda")
        with HostSyncFinder(), cuda_autocast_without_driver():
            chunk = engine.sample_chunk(refs, values, valid, generator=None)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                frames = codec.decode_video(chunk[:, k:])
        if chunk.device.type != "cuda" or frames.device.type != "cuda":
            raise AssertionError(f"chunk on {chunk.device}, frames on {frames.device}")
        if chunk.dtype != torch.float32:
            raise AssertionError(f"the sampled latents are {chunk.dtype}: the sampler's state must stay float32")
        return (f"{int(cfg.sampler.num_steps)} Euler steps, CFG {float(cfg.sampler.cfg_scale):g}, decode of "
                f"{t - k} x {v} frames on cuda, {chosen.label}")


def main(argv: list[str] | None = None) -> int:
    if not torch.backends.cuda.is_built():
        print("worldmodel.plan.gpu_sim needs a CUDA build of torch (`make gpu-sim` installs one in .venv-gpu-sim)",
              file=sys.stderr)
        return 2
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # its float32-module notice for a VAE built from a config, per build
    args = list(sys.argv[1:] if argv is None else argv)
    recipes = [args] if args else [list(r) for r in RECIPES]
    failures = 0
    for overrides in recipes:
        cfg = compose_config("train", overrides)
        checks = (("training step", check_training_step), ("rollout chunk", check_rollout_chunk),
                  ("rollout, bf16-true", lambda c: check_rollout_chunk(c, "bf16-true")))
        for name, check in checks:
            began = time.perf_counter()
            try:
                result = "ok    " + check(cfg)
            except Exception as error:  # noqa: BLE001 - every finding is reported, then the exit code says it
                failures += 1
                result = f"FAIL  {type(error).__name__}: {error}"
            print(f"{' '.join(overrides):32s} {name:18s} {time.perf_counter() - began:5.1f} s  {result}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
