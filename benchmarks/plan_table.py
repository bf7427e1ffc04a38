"""The paper-size plan table: `worldmodel-plan`'s figures for sd3_medium long and mview, on fake tensors (no GPU).

    python -m benchmarks.plan_table                 # prints the Markdown tables (about 4 minutes on 2 cores)
    python -m benchmarks.plan_table --sampling-only # the sampling table alone

Rows: each layout (`sd3_stage2_long`: batch 1 x 25 x 288x512; `sd3_stage3_mview`: 8 frames x 6 views) with
gradient checkpointing on / off and MR on / off; columns: FLOPs per step, seconds per step at 40 % MFU of an H100,
peak memory per GPU on one GPU and under FSDP over 8 (weights, gradients, AdamW state and the EMA copy divided by 8,
plus two gathered blocks). Then sampling one clip per layout (30 Euler steps, CFG 4) at worldmodel-rollout's GPU
precisions (`bf16`: float32 weights under bf16 autocast, what `auto` picks; `bf16-true`: bfloat16 weights):
predicted seconds and peak.
"""
from __future__ import annotations

import argparse
import time

from worldmodel.config import compose_config
from worldmodel.plan.estimate import GIB, per_rank_memory, sample_time, step_time
from worldmodel.plan.fake_step import measure_sampling, measure_training_step
from worldmodel.plan.gpus import gpu_named

LAYOUTS = {"sd3_medium long (1 x 25 x 288x512)": "experiment=sd3_stage2_long",
           "sd3_medium mview (8 frames x 6 views)": "experiment=sd3_stage3_mview"}
MFU = 0.4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampling-only", action="store_true", help="only the sampling table")
    args = parser.parse_args()
    gpu = gpu_named("H100")
    began = time.perf_counter()
    if not args.sampling_only:
        training_table(gpu)
    sampling_table(gpu)
    print(f"\n({time.perf_counter() - began:.0f} s)")


def training_table(gpu) -> None:
    print("| layout | MR | grad ckpt | TFLOP / step | s / step (H100, 40 % MFU) | peak, 1 GPU (GiB) | "
          "of which weights / grads / AdamW / activations | peak, FSDP x 8 (GiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for layout, experiment in LAYOUTS.items():
        for mr in (True, False):
            for checkpointing in (True, False):
                overrides = [experiment, f"gradient_checkpointing={str(checkpointing).lower()}"]
                if not mr:
                    overrides.append("objective=rectified_flow")
                step = measure_training_step(compose_config("train", overrides))
                m = step.peak
                fsdp = per_rank_memory(step, "fsdp", 8)
                print(f"| {layout} | {'on' if mr else 'off'} | {'on' if checkpointing else 'off'} | "
                      f"{step.flops / 1e12:,.1f} | {step_time(step.flops, gpu, MFU).step_s:.2f} | "
                      f"{m.total / GIB:.1f} | {m.weights / GIB:.1f} / {m.gradients / GIB:.1f} / "
                      f"{m.optimizer / GIB:.1f} / {m.activations / GIB:.1f} | {fsdp.total / GIB:.1f} |", flush=True)
    print()


def sampling_table(gpu) -> None:
    print("| layout | sampling one clip (30 steps, CFG 4) | TFLOP | s (H100, 40 % MFU) | peak (GiB) | weights (GiB) |")
    print("|---|---|---|---|---|---|")
    for layout, experiment in LAYOUTS.items():
        for precision in ("bf16", "bf16-true"):
            sample = measure_sampling(compose_config("train", [experiment]), precision)
            print(f"| {layout} | {sample.frames} frames, `precision={precision}` ({sample.precision}) | "
                  f"{sample.flops / 1e12:,.0f} | {sample_time(sample, gpu, MFU):.1f} | "
                  f"{sample.peak.total / GIB:.1f} | {sample.peak.weights / GIB:.1f} |", flush=True)


if __name__ == "__main__":
    main()
