"""One training step and one sampling chunk of a composed run, on fake tensors: shapes and dtypes, no memory.

PyTorch's `FakeTensorMode` gives every tensor its shape, dtype and device without storage, so the full-size model
is built, stepped (forward, backward, AdamW, EMA) and sampled on a laptop in seconds. What is counted:
- FLOPs with `torch.utils.flop_counter.FlopCounterMode`, the step as the GPU runs it minus recomputation (a
  checkpointed block's forward is counted once);
- memory with `torch.distributed._tools.mem_tracker.MemTracker`: every tensor the step holds, by kind
  (parameters and buffers, gradients, optimiser state, activations and temporaries), at the step's peak.
Attention is counted as PyTorch's fused flash-attention kernel: it keeps no (sequence x sequence) score matrix
(the kernel's output and log-sum-exp only) and does 4 b h s_q s_k d FLOPs forward, 2.5 times that backward.
On a CPU build of torch the fused kernel is the CPU flash kernel, whose memory matches the GPU's; its FLOPs
are added with the same formula the counter uses for the GPU kernels.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.distributed._tools.mem_tracker import _TOTAL_KEY, MemTracker
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from worldmodel.model.maskgwm import PARAMETER_GROUPS
from worldmodel.plan.codec import plannable_codec
from worldmodel.plan.live_bytes import PeakLiveBytes
from worldmodel.runtime import sampling_precision
from worldmodel.viz import from_uint8

ATTENTION_KERNEL = ("fused flash attention (no sequence x sequence score matrix kept); FLOPs 4 b h s_q s_k d "
                    "forward, 2.5x that backward")
aten = torch.ops.aten
# torch's counter knows the GPU flash / efficient / cuDNN kernels; the CPU flash kernel gets the same formulas.
_CPU_FLASH_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu:
        lambda q, k, v, *args, out_shape=None, **kwargs: sdpa_flop_count(q, k, v),
    aten._scaled_dot_product_flash_attention_for_cpu_backward:
        lambda grad_out, q, k, v, *args, out_shape=None, **kwargs: sdpa_backward_flop_count(grad_out, q, k, v),
}


@dataclass
class Memory:
    """Bytes at the peak of a step, by kind."""

    weights: int = 0        # parameters and buffers (the EMA copy included)
    gradients: int = 0
    optimizer: int = 0
    activations: int = 0    # activations kept for the backward pass and temporaries

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations


@dataclass
class StepCount:
    """What one fake training step measured."""

    flops: float
    peak: Memory
    parameters: dict[str, tuple[int, int]]  # group -> (trainable, frozen) element counts
    parameter_bytes: int                     # the live model's parameters (no EMA copy)
    trainable_bytes: int
    ema_bytes: int
    largest_unit_bytes: int                  # the largest FSDP unit's parameters (a block)
    tokens: int                              # tokens through the network per step, all passes
    tokens_per_pass: int
    passes: int                              # full-grid + masked forwards per step
    clip: tuple[int, int, int, int, int]     # B, T, V, H, W of the batch
    precision: str
    gradient_checkpointing: bool
    codec: str
    notes: list[str] = field(default_factory=list)


@dataclass
class SampleCount:
    """What one fake sampling chunk measured: `clips` clips of `frames` frames, `steps` Euler steps, CFG or not."""

    flops: float
    peak: Memory
    steps: int
    cfg: bool
    frames: int
    decode_flops: float
    precision: str  # as worldmodel.runtime.SamplingPrecision.label says it
    clips: int = 1


class _StepMemTracker(MemTracker):
    """torch's MemTracker, also for models with frozen parameters, and tracking the step's peak only.

    It installs a gradient hook on every parameter it tracks, which torch refuses on a tensor that needs no
    gradient: a frozen parameter is switched to requires_grad for the moment the hook is installed (before any
    computation), and the hook then never fires."""

    def _track_module_params_and_buffers(self, module: nn.Module, install_grad_hooks: bool = True) -> tuple[int, int]:
        frozen = [p for p in module.parameters() if not p.requires_grad]
        for param in frozen:
            param.requires_grad_(True)
        try:
            return super()._track_module_params_and_buffers(module, install_grad_hooks)
        finally:
            for param in frozen:
                param.requires_grad_(False)

    def _update_peak_stats(self, peak_state: Any) -> None:
        # Only the whole step's peak is read. torch's version also updates every tracked module's own peak, a loop
        # over all modules at every operator: 70 % of a plan's time for a 24-block model.
        for device, snapshot in self._curr_mem_snap.items():
            if self._peak_mem.get(device, 0) < snapshot[_TOTAL_KEY]:
                self._peak_mem[device] = snapshot[_TOTAL_KEY]
                self._peak_mem_snap[device] = dict(snapshot)


def _memory(tracker: MemTracker) -> Memory:
    by_kind: dict[str, int] = {}
    for device_stats in tracker.get_tracker_snapshot("peak").values():
        for kind, value in device_stats.items():
            name = str(kind).rsplit(".", 1)[-1].upper()  # _MemRefType.PARAM -> PARAM
            by_kind[name] = by_kind.get(name, 0) + value
    return Memory(weights=by_kind.get("PARAM", 0) + by_kind.get("BUFFER", 0), gradients=by_kind.get("GRAD", 0),
                  optimizer=by_kind.get("OPT", 0),
                  activations=by_kind.get("ACT", 0) + by_kind.get("TEMP", 0) + by_kind.get("OTH", 0))


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision in ("bf16-mixed", "16-mixed"):
        dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
        return torch.autocast("cpu", dtype=dtype)
    return contextlib.nullcontext()


def _true_dtype(precision: str) -> torch.dtype | None:
    return {"bf16-true": torch.bfloat16, "16-true": torch.float16}.get(precision)


class _TrainingStep(nn.Module):
    """The objective's loss around the network, so that MemTracker sees one root module per step (it takes a
    second call of its root for a second step) while MR calls the network twice."""

    def __init__(self, model: nn.Module, codec: nn.Module | None, objective: Any) -> None:
        super().__init__()
        self.model = model
        self.codec = codec
        self.objective = objective

    def forward(self, data: torch.Tensor, num_reference: torch.Tensor, actions: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        """data: uint8 frames (B, T, V, H, W, 3) when there is a codec, else latents (B, T, V, C, h, w)."""
        if self.codec is not None:
            with torch.no_grad():
                data = self.codec.encode_video(from_uint8(data))
        loss, _ = self.objective.training_loss(self.model, data, num_reference, actions, valid)
        return loss


def _group_counts(model: nn.Module) -> dict[str, tuple[int, int]]:
    owner = {name: group for group, names in PARAMETER_GROUPS.items() for name in names}
    counts: dict[str, list[int]] = {}
    for name, p in model.named_parameters():
        group = owner.get(name.split(".")[0], "other")
        slot = counts.setdefault(group, [0, 0])
        slot[0 if p.requires_grad else 1] += p.numel()
    return {group: (c[0], c[1]) for group, c in counts.items()}


def _largest_unit_bytes(model: nn.Module) -> int:
    from worldmodel.training.fsdp import BLOCK_CLASSES

    units = [m for m in model.modules() if type(m) in BLOCK_CLASSES]
    return max((sum(p.numel() * p.element_size() for p in m.parameters()) for m in units), default=0)


def _clip_shape(cfg: DictConfig, model: nn.Module) -> tuple[int, int, int, int, int]:
    views = int(model.config.num_views)
    height, width = (int(x) for x in cfg.data.clip.size)
    return int(cfg.data.batch_size), int(cfg.data.clip.num_frames), views, height, width


def step_inputs(cfg: DictConfig, model: nn.Module, codec: nn.Module, encodes: bool
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A training batch of the run's shape: uint8 frames (B, T, V, H, W, 3) when the step encodes them, else
    latents (B, T, V, C, h, w); the most reference frames the run draws; actions (B, 19) and all groups valid."""
    b, t, v, h, w = _clip_shape(cfg, model)
    down = codec.downsample
    data = (torch.zeros(b, t, v, h, w, 3, dtype=torch.uint8) if encodes
            else torch.randn(b, t, v, model.config.in_channels, h // down, w // down))
    num_reference = torch.full((b,), max(int(c) for c in cfg.reference_frames.choices), dtype=torch.long)
    return data, num_reference, torch.zeros(b, 19), torch.ones(b, 5, dtype=torch.bool)


@contextlib.contextmanager
def _fake() -> Iterator[FakeTensorMode]:
    # Constants some modules hold as plain tensors (the DCT basis) are taken in as fake ones.
    with FakeTensorMode(allow_non_fake_inputs=True) as mode, warnings.catch_warnings():
        # torch's own parameter code reads a data pointer to tell meta tensors apart; on a fake one it warns.
        warnings.filterwarnings("ignore", message="Accessing the data pointer of FakeTensor is deprecated")
        yield mode


def build_for_plan(cfg: DictConfig) -> tuple[DictConfig, list[str]]:
    """The run config with what a plan needs no file for: no SD3 weights to load (the spatial stack's shapes are
    the preset's), no dataset to open."""
    cfg = copy.deepcopy(cfg)
    notes = []
    OmegaConf.set_struct(cfg, False)
    if cfg.model.get("pretrained_sd3"):
        cfg.model.pretrained_sd3 = None
        notes.append("model.pretrained_sd3 is not read: a plan needs the preset's shapes only")
    return cfg, notes


def measure_training_step(cfg: DictConfig, adamw_kernel: str = "fused") -> StepCount:
    """Build the run's network, codec, objective, AdamW and EMA on fake tensors, run two training steps (the first
    creates the optimiser state) and count the second. `adamw_kernel`: `fused`, as runs build it on a GPU
    (worldmodel/training/adamw.py), or `foreach`, torch's default for CUDA parameters, whose step holds a
    temporary the size of all trainable parameters."""
    if adamw_kernel not in ("fused", "foreach"):
        raise ValueError(f"adamw_kernel must be fused or foreach, got {adamw_kernel!r}")
    from worldmodel.training.adamw import adamw
    from worldmodel.training.ema import EMAWeights
    from worldmodel.training.train import build_objective, strategy_checkpoints
    from worldmodel.training.trainable import freeze_idle_groups, select_trainable

    cfg, notes = build_for_plan(cfg)
    precision = str(cfg.trainer.precision)
    checkpointing = bool(cfg.gradient_checkpointing)
    codec, encodes, codec_notes = plannable_codec(cfg)
    notes += codec_notes
    with _fake():
        model = instantiate(cfg.model, _convert_="all").train()
        objective = build_objective(cfg)
        select_trainable(model, None if cfg.trainable is None else list(cfg.trainable))
        freeze_idle_groups(model, objective)
        if checkpointing:
            model.enable_gradient_checkpointing()
        if (dtype := _true_dtype(precision)) is not None:
            model.to(dtype)
        ema = EMAWeights(model, float(cfg.ema.decay)) if cfg.ema.enabled else None
        step = _TrainingStep(model, codec if encodes else None, objective)
        trainable = [p for p in model.parameters() if p.requires_grad]
        # As on a GPU (fake tensors are on the CPU, where torch would pick neither kernel).
        optimizer = (adamw(trainable, lr=1e-5, fused=True) if adamw_kernel == "fused"
                     else torch.optim.AdamW(trainable, lr=1e-5, foreach=True))
        b, t, v, h, w = _clip_shape(cfg, model)
        down = codec.downsample
        data, num_reference, actions, valid = step_inputs(cfg, model, codec, encodes)
        passes = _count_passes(model)

        def one_step() -> None:
            with _autocast(precision):
                loss = step(data, num_reference, actions, valid)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(model)

        one_step()  # AdamW creates its state in the first step: a real run's peak is in a later one
        if checkpointing:
            # Model FLOPs exclude recomputation: count a step with checkpointing off, track memory with it on.
            _set_checkpointing(model, False)
            with FlopCounterMode(display=False, custom_mapping=_CPU_FLASH_FLOPS) as counter:
                one_step()
            _set_checkpointing(model, True)
        passes["full_grid"] = passes["packed"] = 0
        tracker = _StepMemTracker()
        tracker.track_external(step, optimizer, *(() if ema is None else (ema,)))
        with tracker, (contextlib.nullcontext(counter) if checkpointing else
                       FlopCounterMode(display=False, custom_mapping=_CPU_FLASH_FLOPS)) as counted:
            one_step()
        peak = _memory(tracker)
        flops = float(counted.get_total_flops())
        p = model.config.patch_size
        per_pass = b * t * v * (h // down // p) * (w // down // p)
        ratio = 1.0 - float(getattr(objective, "mask_ratio", 0.0))
        tokens = per_pass * passes["full_grid"] + int(round(per_pass * ratio)) * passes["packed"]
        if strategy_checkpoints(cfg.trainer):
            notes.append("the strategy checkpoints the blocks (FSDP), counted here as the model's own checkpointing")
        return StepCount(
            flops=flops, peak=peak, parameters=_group_counts(model),
            parameter_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
            trainable_bytes=sum(p.numel() * p.element_size() for p in trainable),
            ema_bytes=0 if ema is None else sum(p.numel() * p.element_size() for p in ema.shadow.parameters()),
            largest_unit_bytes=_largest_unit_bytes(model), tokens=tokens, tokens_per_pass=per_pass,
            passes=passes["full_grid"] + passes["packed"], clip=(b, t, v, h, w), precision=precision,
            gradient_checkpointing=checkpointing, codec=type(codec).__name__ + ("" if encodes else " (not run)"),
            notes=notes)


def _count_passes(model: nn.Module) -> dict[str, int]:
    counts = {"full_grid": 0, "packed": 0}

    def hook(module, args, kwargs):
        if torch.is_grad_enabled():
            counts["packed" if kwargs.get("mask_plan") is not None else "full_grid"] += 1

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return counts


def _set_checkpointing(model: nn.Module, on: bool) -> None:
    for module in model.modules():
        if hasattr(module, "gradient_checkpointing"):
            module.gradient_checkpointing = on


def fake_to(module: nn.Module, device: str | torch.device | None = None,
            dtype: torch.dtype | None = None) -> nn.Module:
    """`module.to(device, dtype)` for fake tensors: parameters and buffers replaced by tensors on `device` (the
    floating-point ones in `dtype`), what `.to()` changes and nothing more. (`.to()` itself swaps each fake
    parameter in place, which torch refuses.)"""

    def moved(tensor: torch.Tensor) -> torch.Tensor:
        cast = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
        return torch.empty_like(tensor, device=device or tensor.device, dtype=cast)

    for sub in module.modules():
        for name, param in sub._parameters.items():
            if param is not None:
                sub._parameters[name] = nn.Parameter(moved(param), requires_grad=param.requires_grad)
        for name, buffer in sub._buffers.items():
            if buffer is not None:
                sub._buffers[name] = moved(buffer)
    return module


def measure_sampling(cfg: DictConfig, precision: str = "bf16", clips: int = 1) -> SampleCount:
    """`clips` clips of the run's shape sampled together as `worldmodel-rollout precision=PRECISION` does on a
    GPU (`bf16`, what `auto` picks there: float32 weights under bf16 autocast; `bf16-true`: bfloat16 weights;
    `fp32`), every Euler step one forward of the conditional and unconditional batch together (CFG), then the
    codec's decode of the new frames. One forward is counted and multiplied by the steps: every step runs the
    same shapes."""
    chosen = sampling_precision(precision, torch.device("cuda"))
    cfg, _ = build_for_plan(cfg)
    steps, cfg_scale = int(cfg.sampler.num_steps), float(cfg.sampler.cfg_scale)
    codec, _, _ = plannable_codec(cfg)
    with _fake():
        model = instantiate(cfg.model, _convert_="all").eval().requires_grad_(False)
        if chosen.weights is not None:
            fake_to(model, dtype=chosen.weights)  # as load_world_model casts them
        _, t, v, h, w = _clip_shape(cfg, model)
        batch = clips * (2 if cfg_scale != 1.0 else 1)
        down = codec.downsample
        latents = torch.randn(batch, t, v, model.config.in_channels, h // down, w // down)
        tau = torch.full((batch, t), 0.5)
        is_reference = torch.zeros(batch, t, dtype=torch.bool)
        is_reference[:, 0] = True
        actions, valid = torch.zeros(batch, 19), torch.ones(batch, 5, dtype=torch.bool)
        live = PeakLiveBytes()
        live.track(model, codec)
        weights = live.current
        with torch.no_grad(), live, FlopCounterMode(display=False, custom_mapping=_CPU_FLASH_FLOPS) as forward:
            with torch.autocast("cpu", dtype=chosen.autocast or torch.float32, enabled=chosen.autocast is not None):
                out = model(latents, tau, actions=actions, action_valid=valid, is_reference=is_reference)
            del out
            with FlopCounterMode(display=False, custom_mapping=_CPU_FLASH_FLOPS) as decode:
                codec.decode_video(latents[:clips, 1:])
        decode_flops = float(decode.get_total_flops())
        per_forward = float(forward.get_total_flops()) - decode_flops
        peak = Memory(weights=weights, activations=live.peak - weights)
        return SampleCount(flops=per_forward * steps + decode_flops, peak=peak, steps=steps,
                           cfg=cfg_scale != 1.0, frames=t, decode_flops=decode_flops,
                           precision=chosen.label, clips=clips)
