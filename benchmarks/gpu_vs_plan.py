"""worldmodel-plan's predictions against a GPU's measurements, on the paper recipes' training step and sampling.

    python -m benchmarks.gpu_vs_plan plan > benchmarks/gpu_vs_plan_predicted.json    # fake tensors, any machine
    python -m benchmarks.gpu_vs_plan measure --out DIR                               # a CUDA GPU
    python -m benchmarks.gpu_vs_plan compare benchmarks/gpu_vs_plan_predicted.json DIR/measured.json

`plan` runs `worldmodel-plan`'s measurement (fake tensors) of each case; `measure` runs the same cases for real
on the GPU: the training step of `experiment=sd3_stage2_long` and `experiment=sd3_stage3_mview` as the planner
builds it (random weights, the SD3 VAE's architecture encoding the clip in the step, MR's two passes, gradient
checkpointing, bf16 autocast, AdamW, EMA), and one chunk of `RolloutEngine` (30 Euler steps with CFG 4, then the
decode) with float32 and with bfloat16 weights. Peak memory is `torch.cuda.max_memory_allocated` over one step
(after AdamW made its state) or one chunk; times are the mean of the timed steps after a warm-up. Each case's
result is written to DIR/measured.json as soon as it exists, so a failure later leaves the earlier ones.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from worldmodel.config import compose_config

RECIPES = {"long": "experiment=sd3_stage2_long", "mview": "experiment=sd3_stage3_mview"}
PRECISIONS = ("bf16", "bf16-true")
GIB = 2**30


def plan_all() -> dict[str, Any]:
    from worldmodel.plan.fake_step import measure_sampling, measure_training_step

    out: dict[str, Any] = {}
    for name, experiment in RECIPES.items():
        cfg = compose_config("train", [experiment])
        step = measure_training_step(cfg)
        out[f"{name} train"] = {"peak_gib": step.peak.total / GIB, "tflop": step.flops / 1e12}
        foreach = measure_training_step(cfg, adamw_kernel="foreach")
        out[f"{name} train, foreach AdamW"] = {"peak_gib": foreach.peak.total / GIB, "tflop": foreach.flops / 1e12}
        for precision in PRECISIONS:
            sample = measure_sampling(cfg, precision)
            out[f"{name} sample {precision}"] = {"peak_gib": sample.peak.total / GIB, "tflop": sample.flops / 1e12}
    return out


def _synced() -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def _reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float:
    """The allocator's peak since the last reset (0 on the CPU, where only the code path is smoke-tested)."""
    return torch.cuda.max_memory_allocated() / GIB if torch.cuda.is_available() else 0.0


def _built(cfg, device: torch.device) -> tuple[nn.Module, nn.Module, Any, bool]:
    """Network, codec and objective of a plan-ready config on `device` (random weights), as the planner builds them."""
    from worldmodel.plan.codec import plannable_codec
    from worldmodel.training.train import build_objective
    from worldmodel.training.trainable import freeze_idle_groups, select_trainable

    codec, encodes, _ = plannable_codec(cfg)
    with device:
        model = instantiate(cfg.model, _convert_="all").train()
    objective = build_objective(cfg)
    select_trainable(model, None if cfg.trainable is None else list(cfg.trainable))
    freeze_idle_groups(model, objective)
    return model, codec.to(device), objective, encodes


def measure_training(cfg, device: torch.device, timed: int = 3) -> tuple[dict[str, Any], nn.Module, nn.Module]:
    from worldmodel.plan.fake_step import _TrainingStep, step_inputs
    from worldmodel.training.adamw import adamw
    from worldmodel.training.ema import EMAWeights

    model, codec, objective, encodes = _built(cfg, device)
    if cfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    ema = EMAWeights(model, float(cfg.ema.decay)) if cfg.ema.enabled else None
    step = _TrainingStep(model, codec if encodes else None, objective)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = adamw(trainable, lr=1e-5)  # as the run builds it: fused on a GPU
    inputs = [x.to(device) for x in step_inputs(cfg, model, codec, encodes)]

    def one_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = step(*inputs)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(model)

    one_step()  # AdamW makes its state here
    _reset_peak()
    began = _synced()
    for _ in range(timed):
        one_step()
    seconds = (_synced() - began) / timed
    result = {"peak_gib": _peak_gib(), "step_s": seconds}
    # The sampling cases reuse the network: everything the step held besides it is freed first.
    del optimizer, ema, step, inputs, trainable, one_step
    model.disable_gradient_checkpointing()
    return result, model, codec


def measure_sampling_chunk(cfg, model: nn.Module, codec: nn.Module, precision: str, device: torch.device
                           ) -> dict[str, Any]:
    from worldmodel.plan.fake_step import _clip_shape
    from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
    from worldmodel.runtime import sampling_precision

    chosen = sampling_precision(precision, device)
    model.eval().requires_grad_(False)
    if chosen.weights is not None:
        nn.Module.to(model, chosen.weights)
    sampler = instantiate(cfg.sampler, _convert_="all")
    _, t, v, h, w = _clip_shape(cfg, model)
    k = max(int(c) for c in cfg.reference_frames.choices)
    down = codec.downsample
    refs = torch.randn(1, k, v, model.config.in_channels, h // down, w // down, device=device)
    values, valid = torch.zeros(1, 19, device=device), torch.ones(1, 5, dtype=torch.bool, device=device)

    def chunk(steps_sampler) -> None:
        engine = RolloutEngine(model, steps_sampler, ChunkSchedule(t, k, k, 1), autocast_dtype=chosen.autocast)
        with torch.no_grad():
            latents = engine.sample_chunk(refs, values, valid, generator=None)
            codec.decode_video(latents[:, k:])

    chunk(sampler.replace(num_steps=2))  # warm-up: kernels chosen, allocator grown
    _reset_peak()
    began = _synced()
    chunk(sampler)
    return {"peak_gib": _peak_gib(), "seconds": _synced() - began,
            "steps": sampler.num_steps, "cfg_scale": sampler.cfg_scale, "precision": chosen.label}


def measure_all(out_dir: Path, device: torch.device, recipes: dict[str, str]) -> int:
    from worldmodel.plan.fake_step import build_for_plan

    out_dir.mkdir(parents=True, exist_ok=True)
    name_of = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results: dict[str, Any] = {"device": name_of, "torch": torch.__version__}
    failures = 0

    def record(name: str, value: dict[str, Any]) -> None:
        results[name] = value
        (out_dir / "measured.json").write_text(json.dumps(results, indent=1))
        print(name, json.dumps(value), flush=True)

    for name, experiment in recipes.items():
        cfg, _ = build_for_plan(compose_config("train", experiment.split()))
        model = codec = None
        try:
            began = time.perf_counter()
            measured, model, codec = measure_training(cfg, device)
            record(f"{name} train", {**measured, "wall_s": time.perf_counter() - began})
            for precision in PRECISIONS:
                record(f"{name} sample {precision}", measure_sampling_chunk(cfg, model, codec, precision, device))
        except Exception:  # noqa: BLE001 - every case is tried; the failure is recorded with its traceback
            failures += 1
            record(f"{name} error", {"traceback": traceback.format_exc()[-3000:]})
        del model, codec
        _reset_peak()
    return 1 if failures else 0


def compare(predicted: dict[str, Any], measured: dict[str, Any], mfu: float = 0.4) -> str:
    """The table: peaks side by side, and the measured time against the planner's at `mfu` of the GPU's peak."""
    from worldmodel.plan.gpus import bf16_peak_of_device_name

    peak = bf16_peak_of_device_name(str(measured.get("device", ""))) or 989.4e12
    lines = [f"measured on {measured.get('device')} (torch {measured.get('torch')}); predicted times at "
             f"{mfu:.0%} of its {peak / 1e12:.0f} TFLOP/s bf16 peak", "",
             "| case | predicted peak (GiB) | measured peak (GiB) | measured / predicted | predicted s | measured s "
             "| measured MFU |", "|---|---|---|---|---|---|---|"]
    for case, plan in predicted.items():
        got = measured.get(case)
        planned_s = plan["tflop"] * 1e12 / (mfu * peak)
        if got is None:
            lines.append(f"| {case} | {plan['peak_gib']:.1f} | not measured | | {planned_s:.2f} | | |")
            continue
        seconds = got.get("step_s", got.get("seconds"))
        lines.append(f"| {case} | {plan['peak_gib']:.1f} | {got['peak_gib']:.1f} | "
                     f"{got['peak_gib'] / plan['peak_gib']:.3f} | {planned_s:.2f} | {seconds:.2f} | "
                     f"{plan['tflop'] * 1e12 / seconds / peak:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plan")
    measure = sub.add_parser("measure")
    measure.add_argument("--out", type=Path, required=True)
    measure.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke run of the code path")
    measure.add_argument("--recipe", action="append", metavar="NAME=OVERRIDES",
                         help="e.g. 'tiny=experiment=quickstart_mr' (default: the two paper recipes)")
    both = sub.add_parser("compare")
    both.add_argument("predicted", type=Path)
    both.add_argument("measured", type=Path)
    args = parser.parse_args(argv)
    if args.command == "plan":
        print(json.dumps(plan_all(), indent=1))
        return 0
    if args.command == "measure":
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            print("measure needs a CUDA GPU (or --device cpu for a smoke run)", file=sys.stderr)
            return 2
        recipes = dict(r.split("=", 1) for r in args.recipe) if args.recipe else RECIPES
        return measure_all(args.out, device, recipes)
    print(compare(json.loads(args.predicted.read_text()), json.loads(args.measured.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
