"""Cost of mask reconstruction: FLOPs and CPU time of one training forward + backward of `small`, r = 0.25 vs 0.

    python -m benchmarks.bench_mr [--reps 2] [--threads 2] [--frames 8] [--grids 16x32 36x64]

A batch of 2 clips: one with the spatial mask (F_s) and one with the time mask (F_t), so both
reconstruction branches are in the count. FLOPs come from torch.utils.flop_counter.FlopCounterMode
(with CPU flash attention counted like the other SDPA kernels) on a first run that is also the
warm-up; time is the median of the `reps` runs after it.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from worldmodel.config import compose_config
from worldmodel.model import MaskGWM, MaskPlan, sample_mask_plan

aten = torch.ops.aten


def _sdpa_cpu(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _sdpa_cpu_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# FlopCounterMode does not count the CPU flash-attention kernel by itself.
CPU_ATTENTION_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward,
}


def training_step(model: MaskGWM, latents: torch.Tensor, tau: torch.Tensor, plan: MaskPlan | None) -> None:
    model.zero_grad(set_to_none=True)
    model(latents, tau, mask_plan=plan).float().square().mean().backward()


def measure(model: MaskGWM, latents: torch.Tensor, ratio: float, reps: int) -> dict[str, float]:
    """FLOPs and median seconds of a forward + backward at mask ratio `ratio` (0: no MR)."""
    b, t, v, _, h, w = latents.shape
    p = model.config.patch_size
    gen = torch.Generator().manual_seed(0)
    tau = torch.rand(b, t, generator=gen)
    plan = None
    if ratio > 0:
        plan = sample_mask_plan((b, t, v), (h // p, w // p), ratio, 0.5, torch.randn(latents.shape, generator=gen), gen)
        kinds = torch.arange(b * v).reshape(b, v) % 2 == 0  # half time mask, half spatial mask
        plan = MaskPlan(plan.keep, kinds, plan.mask_noise, plan.grid_width)
    with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter:
        training_step(model, latents, tau, plan)
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        training_step(model, latents, tau, plan)
        seconds.append(time.perf_counter() - start)
    return {"flops": counter.get_total_flops(), "seconds": statistics.median(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--grids", nargs="+", default=["16x32", "36x64"],
                        help="latent grids HxW (16x32: the quickstart's; 36x64: the paper's 576 tokens per frame)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = instantiate(compose_config("train", ["model=small"]).model, _convert_="all").train()
    c, p = model.config.in_channels, model.config.patch_size
    print(f"small: {model.config.num_layers} blocks ({model.num_encoder_layers} encoder + "
          f"{model.config.mr_decoder_layers} decoder), hidden {model.inner_dim}; batch 2 x {args.frames} frames; "
          f"{args.threads} CPU threads")
    print("| latent grid (tokens/frame) | r | GFLOP fwd+bwd | vs r=0 | CPU s fwd+bwd | vs r=0 |")
    print("|---|---|---|---|---|---|")
    for grid in args.grids:
        h, w = (int(x) for x in grid.split("x"))
        latents = torch.randn(2, args.frames, 1, c, h, w, generator=torch.Generator().manual_seed(1))
        base = measure(model, latents, 0.0, args.reps)
        for ratio in (0.0, 0.25):
            r = base if ratio == 0 else measure(model, latents, ratio, args.reps)
            print(f"| {h}x{w} ({(h // p) * (w // p)}) | {ratio} | {r['flops'] / 1e9:.1f} | "
                  f"{r['flops'] / base['flops']:.3f} | {r['seconds']:.2f} | {r['seconds'] / base['seconds']:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
