"""The paper-size plan table: `worldmodel-plan`'s figures for sd3_medium long and mview, on fake tensors (no GPU).

    python -m benchmarks.plan_table            # prints a Markdown table (about 15 minutes on 2 cores)

Rows: each layout (`sd3_stage2_long`: batch 1 x 25 x 288x512; `sd3_stage3_mview`: 8 frames x 6 views) with
gradient checkpointing on / off and MR on / off; columns: FLOPs per step, seconds per step at 40 % MFU of an H100,
peak memory per GPU on one GPU and under FSDP over 8 (weights, gradients, AdamW state and the EMA copy divided by 8,
plus two gathered blocks). Then sampling one clip per layout (30 Euler steps, CFG 4): predicted seconds and peak.
"""
from __future__ import annotations

import time

from worldmodel.config import compose_config
from worldmodel.plan.estimate import GIB, per_rank_memory, sample_time, step_time
from worldmodel.plan.fake_step import measure_sampling, measure_training_step
from worldmodel.plan.gpus import gpu_named

LAYOUTS = {"sd3_medium long (1 x 25 x 288x512)": "experiment=sd3_stage2_long",
           "sd3_medium mview (8 frames x 6 views)": "experiment=sd3_stage3_mview"}
MFU = 0.4


def main() -> None:
    gpu = gpu_named("H100")
    began = time.perf_counter()
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
    print("| layout | sampling one clip (30 steps, CFG 4) | TFLOP | s (H100, 40 % MFU) | peak (GiB) | weights (GiB) |")
    print("|---|---|---|---|---|---|")
    for layout, experiment in LAYOUTS.items():
        sample = measure_sampling(compose_config("train", [experiment]))
        print(f"| {layout} | {sample.frames} frames, bf16 autocast, fp32 weights | {sample.flops / 1e12:,.0f} | "
              f"{sample_time(sample, gpu, MFU):.1f} | {sample.peak.total / GIB:.1f} | "
              f"{sample.peak.weights / GIB:.1f} |", flush=True)
    print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
