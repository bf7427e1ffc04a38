"""Rollout speed on the CPU: seconds per generated frame, sampler steps and CFG as configured.

    python -m benchmarks.bench_rollout [--presets tiny small] [--chunks 3] [--threads 1] [--steps 30]

Times what `worldmodel-rollout` does per chunk: sample (conditional + unconditional pass for CFG),
then decode the chunk's new frames, as the streaming writer does; random weights, batch of one.
"""
from __future__ import annotations

import argparse
import time

import torch
from hydra.utils import instantiate

from worldmodel.config import compose_config
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine


def measure(preset: str, chunks: int, overrides: list[str]) -> dict[str, float]:
    """Seconds per generated frame of `chunks` chunks after 3 carried frames, decode included."""
    cfg = compose_config("train", ["experiment=quickstart", f"model={preset}", *overrides])
    model = instantiate(cfg.model, _convert_="all").eval()
    codec = instantiate(cfg.codec, _convert_="all")
    sampler = instantiate(cfg.sampler, _convert_="all")
    frames = cfg.data.clip.num_frames
    schedule = ChunkSchedule(frames, first_reference=1, carry_frames=3, num_chunks=chunks)
    c, h, w = codec.latent_shape(*cfg.data.clip.size)
    reference = torch.randn(1, 1, 1, c, h, w)
    # Valid actions so classifier-free guidance runs its second (unconditional) pass, as in use.
    plan = [(torch.zeros(1, 19), torch.ones(1, 5, dtype=torch.bool))] * chunks
    engine = RolloutEngine(model, sampler, schedule)
    t0 = time.perf_counter()
    for chunk in engine.stream(reference, plan, generator=torch.Generator().manual_seed(0)):
        codec.decode_video(chunk)
    seconds = time.perf_counter() - t0
    new = schedule.total_frames - 1
    return {"s_per_frame": seconds / new, "frames": new, "steps": sampler.num_steps, "cfg": sampler.cfg_scale,
            "size": f"{cfg.data.clip.size[0]}x{cfg.data.clip.size[1]}",
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the preset's config)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}")
    print("| preset | params | frame size | sampler steps | CFG | generated frames | s / frame |")
    print("|---|---|---|---|---|---|---|")
    for preset in args.presets:
        r = measure(preset, args.chunks, [] if args.steps is None else [f"sampler.num_steps={args.steps}"])
        print(f"| {preset} | {r['params_M']:.1f} M | {r['size']} | {r['steps']} | {r['cfg']} | "
              f"{r['frames']} | {r['s_per_frame']:.3f} |")


if __name__ == "__main__":
    main()
