"""Training and sampling throughput of MaskGWM at the paper's sizes: tokens/s, MFU, peak memory.

    python -m benchmarks.bench_gpu                 # GPU: base and sd3_medium, long and mview, bf16
    python -m benchmarks.bench_gpu --cpu           # CPU smoke run: tiny and small at small sizes, fp32
    python -m benchmarks.bench_gpu --no-append     # print only (default: also append to BENCHMARKS.md)

Each row is one training configuration: plain, with mask reconstruction (r = 0.25, every sample
masked), with gradient checkpointing, with torch.compile. The network trains on random latents of
the codec's shape (SD3 VAE: 16 channels at 1/8 resolution; the CPU run uses the DCT codec's 1/4),
so the codec's cost is left out: training from a latent cache, as the paper-size recipes do.
MFU = model FLOPs of one step (counted by torch's FlopCounterMode on the un-checkpointed step:
recomputation does not count) / step time / the GPU's dense bf16 peak.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

from worldmodel.config import compose_config
from worldmodel.plan.gpus import bf16_peak_of_device_name
from worldmodel.training.train import build_objective

# (name, model preset, views, frames, pixel size, latent downsampling, batch)
GPU_LAYOUTS = [("base long", "base", 1, 25, (288, 512), 8, 1), ("base mview", "base_mview", 6, 8, (288, 512), 8, 1),
               ("sd3_medium long", "sd3_medium", 1, 25, (288, 512), 8, 1),
               ("sd3_medium mview", "sd3_medium_mview", 6, 8, (288, 512), 8, 1)]
CPU_LAYOUTS = [("tiny long", "tiny", 1, 8, (64, 128), 4, 2), ("tiny mview", "tiny_mview", 6, 4, (32, 64), 4, 1),
               ("small long", "small", 1, 4, (64, 128), 4, 1)]
VARIANTS = {"plain": {}, "MR r=0.25": {"mr": True}, "grad ckpt": {"gc": True}, "compile": {"compile": True}}


@dataclass
class Row:
    layout: str
    variant: str
    params_m: float
    step_s: float
    tokens_per_s: float
    tflop_per_step: float
    mfu: float | None
    peak_gb: float
    note: str = ""


def bf16_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return bf16_peak_of_device_name(torch.cuda.get_device_name(device))


def build(preset: str, mr: bool, gc_on: bool, device: torch.device):
    overrides = [f"model={preset}", "objective=rectified_flow_mr" if mr else "objective=rectified_flow"]
    cfg = compose_config("train", overrides)
    model = instantiate(cfg.model, _convert_="all").to(device)
    if gc_on:
        model.enable_gradient_checkpointing()
    objective = build_objective(cfg)
    if mr:
        objective.mr_probability, objective.mask_ratio, objective.also_unmasked_pass = 1.0, 0.25, False
    sampler = instantiate(cfg.sampler, _convert_="all")
    return model.train(), objective, sampler


def batch(views: int, frames: int, size: tuple[int, int], down: int, b: int, channels: int, device: torch.device):
    latents = torch.randn(b, frames, views, channels, size[0] // down, size[1] // down, device=device)
    actions = torch.randn(b, 19, device=device)
    valid = torch.ones(b, 5, dtype=torch.bool, device=device)
    return latents, torch.ones(b, dtype=torch.long, device=device), actions, valid


def measure(layout: tuple, variant: str, device: torch.device, steps: int, sample: bool) -> tuple[Row, float | None]:
    name, preset, views, frames, size, down, b = layout
    opts = VARIANTS[variant]
    model, objective, sampler = build(preset, opts.get("mr", False), opts.get("gc", False), device)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    latents, num_ref, actions, valid = batch(views, frames, size, down, b, model.config.in_channels, device)
    net = torch.compile(model) if opts.get("compile") else model
    if opts.get("compile"):
        net.config = model.config  # the objective reads the patch size and prediction from it
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext())
    generator = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        with autocast:
            loss, _ = objective.training_loss(net, latents, num_ref, actions, valid, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    # Model FLOPs of one step, counted without recomputation (checkpointing off while counting).
    was_gc = model.gradient_checkpointing
    model.gradient_checkpointing = False
    with FlopCounterMode(display=False) as counter:
        with autocast:
            loss, _ = objective.training_loss(model, latents, num_ref, actions, valid, generator=generator)
        loss.backward()
    optimizer.zero_grad(set_to_none=True)
    model.gradient_checkpointing = was_gc
    flops = counter.get_total_flops()

    for _ in range(2):  # warm-up (and compilation)
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    step_s = (time.perf_counter() - t0) / steps
    if device.type == "cuda":
        peak_gb = torch.cuda.max_memory_allocated(device) / 2**30
    else:  # the process's peak resident memory, the closest CPU analogue
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    p = model.config.patch_size
    tokens = b * frames * views * (size[0] // down // p) * (size[1] // down // p)
    peak = bf16_peak(device)
    row = Row(name, variant, params / 1e6, step_s, tokens / step_s, flops / 1e12,
              flops / step_s / peak if peak else None, peak_gb)

    sample_s = None
    if sample:
        model.eval()
        with torch.no_grad(), autocast:
            sampler.sample(model, latents[:1, :1], frames, actions[:1], valid[:1], generator=generator)  # warm-up
            sync()
            t0 = time.perf_counter()
            sampler.sample(model, latents[:1, :1], frames, actions[:1], valid[:1], generator=generator)
            sync()
            sample_s = time.perf_counter() - t0
    del model, net, optimizer, latents
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row, sample_s


def table(rows: list[Row], samples: dict[str, float]) -> str:
    lines = [f"| layout | variant | params | step (s) | tokens/s | TFLOP/step | MFU | peak mem (GB) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mfu = f"{r.mfu:.1%}" if r.mfu is not None else "n/a"
        lines.append(f"| {r.layout} | {r.variant} | {r.params_m:.1f} M | {r.step_s:.3f} | {r.tokens_per_s:,.0f} | "
                     f"{r.tflop_per_step:.2f} | {mfu} | {r.peak_gb:.1f}{r.note} |")
    lines += ["", "| layout | sampling (s per clip) |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in samples.items()]
    return "\n".join(lines)


def targets(rows: list[Row]) -> list[str]:
    """The issue's three GPU targets, checked where the rows exist."""
    by = {(r.layout, r.variant): r for r in rows}
    out = []
    plain, mr = by.get(("sd3_medium long", "plain")), by.get(("sd3_medium long", "MR r=0.25"))
    if plain and plain.mfu is not None:
        out.append(f"- MFU sd3_medium long bf16 >= 45%: {plain.mfu:.1%} -> {'met' if plain.mfu >= 0.45 else 'NOT met'}")
    if plain and mr:
        ratio = mr.step_s / plain.step_s
        out.append(f"- MR step <= 0.80x unmasked: {ratio:.2f}x -> {'met' if ratio <= 0.80 else 'NOT met'}")
    fits = [r for r in rows if r.layout == "sd3_medium long"]
    if fits:
        best = min(r.peak_gb for r in fits)
        out.append(f"- sd3_medium long batch 1 x 25 @ 288x512 within 60 GB: best {best:.1f} GB -> "
                   f"{'met' if best <= 60 else 'NOT met'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="CPU smoke run at tiny/small sizes")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (GPU 10, CPU 3)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--layouts", nargs="*", default=None, help="subset of layout names, e.g. 'sd3_medium long'")
    parser.add_argument("--append", default="BENCHMARKS.md", help="markdown file the table is appended to")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    use_cpu = args.cpu or not torch.cuda.is_available()
    if use_cpu and not args.cpu:
        print("no CUDA device: running the CPU smoke variant (--cpu)")
    device = torch.device("cpu" if use_cpu else "cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    layouts = CPU_LAYOUTS if use_cpu else GPU_LAYOUTS
    if args.layouts:
        layouts = [l for l in layouts if l[0] in args.layouts]
    steps = args.steps or (3 if use_cpu else 10)
    variants = [v for v in args.variants if not (use_cpu and v == "compile")]  # compile needs a C++ toolchain run

    rows, samples = [], {}
    for layout in layouts:
        for variant in variants:
            try:
                row, sample_s = measure(layout, variant, device, steps, sample=variant == "plain")
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                rows.append(Row(layout[0], variant, float("nan"), float("nan"), 0.0, float("nan"), None,
                                float("nan"), " (out of memory)"))
                continue
            rows.append(row)
            if sample_s is not None:
                samples[layout[0]] = sample_s
            print(f"{row.layout:18s} {row.variant:10s} step {row.step_s:.3f} s", flush=True)

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    text = table(rows, samples)
    checks = targets(rows)
    stamp = datetime.date.today().isoformat()
    command = "python -m benchmarks.bench_gpu" + (" --cpu" if use_cpu else "")
    report = (f"\n### GPU benchmark suite: `{command}` ({stamp}, {device_name}, torch {torch.__version__})\n\n"
              f"{text}\n" + ("\n" + "\n".join(checks) + "\n" if checks else ""))
    print(report)
    if not args.no_append:
        with Path(args.append).open("a") as f:
            f.write(report)
        print(f"appended to {args.append}")


if __name__ == "__main__":
    main()
