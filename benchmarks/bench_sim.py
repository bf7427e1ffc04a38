"""Closed-loop env speed on the CPU: steps/s of WorldModelEnv (tiny) and of the procedural simulator.

    python -m benchmarks.bench_sim [--steps-list 1 10 30] [--size 64 128] [--env-steps 10] [--threads 1]
    python -m benchmarks.bench_sim --checkpoint outputs/demo/<time>/export --episodes 8 --horizon 10

A step is 0.5 s of driving: the ego model, the Vista actions, one sampled chunk (8 frames, 5 of them new,
CFG 4.0 so each sampler step runs the conditional and unconditional pass) and its decoding. The tiny
model has random weights (speed does not depend on them). With --checkpoint it also writes the
closed-loop fidelity table of that checkpoint (`worldmodel.sim.fidelity`) under --out.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_rollout_memory import random_export


def _time_env(env, env_steps: int, seed: int = 0) -> tuple[float, float]:
    from worldmodel.sim.policies import LaneKeeping

    policy = LaneKeeping()
    obs, info = env.reset(seed=seed, options={"scenario": "straight_cruise"})
    policy.reset(info)
    obs, *_ = env.step(policy(obs))  # warm-up
    started = time.perf_counter()
    for _ in range(env_steps):
        obs, *_ = env.step(policy(obs))
    seconds = time.perf_counter() - started
    return env_steps / seconds, env_steps * env.chunk_s / seconds


def speed_table(size: tuple[int, int], sampler_steps: list[int], env_steps: int) -> list[dict]:
    from worldmodel.checkpoint import load_world_model
    from worldmodel.sim import ProceduralEnv, WorldModelEnv

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        export = random_export(folder, size=size, num_frames=8, num_steps=1)
        loaded = load_world_model(export, device="cpu")
        for steps in sampler_steps:
            env = WorldModelEnv(loaded, horizon_s=(env_steps + 2) * 0.5, num_steps=steps, cfg_scale=4.0)
            per_s, realtime = _time_env(env, env_steps)
            rows.append({"env": "WorldModelEnv tiny", "sampler steps": steps, "steps/s": per_s,
                         "simulated s per wall s": realtime})
        env = ProceduralEnv(env.rig, horizon_s=(env_steps + 2) * 0.5)
        per_s, realtime = _time_env(env, env_steps)
        rows.append({"env": "ProceduralEnv (truth)", "sampler steps": None, "steps/s": per_s,
                     "simulated s per wall s": realtime})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-list", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--size", type=int, nargs=2, default=[64, 128])
    parser.add_argument("--env-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--horizon", type=float, default=10.0)
    parser.add_argument("--out", default="outputs/bench_sim")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = speed_table(tuple(args.size), args.steps_list, args.env_steps)
    print(f"CPU, {args.threads} torch thread(s), {args.size[0]}x{args.size[1]} frames, 0.5 s (5 frames) per step")
    print("| env | sampler steps | steps/s | simulated s per wall s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['env']} | {r['sampler steps'] or '-'} | {r['steps/s']:.2f} | {r['simulated s per wall s']:.2f} |")
    if args.checkpoint:
        from worldmodel.sim import WorldModelEnv
        from worldmodel.sim.fidelity import run_fidelity
        from worldmodel.sim.policies import LaneKeeping

        env = WorldModelEnv(args.checkpoint, device="cpu", horizon_s=args.horizon)
        result = run_fidelity(env, LaneKeeping(), Path(args.out) / "fidelity", args.episodes, record=False)
        print((result.folder / "fidelity.md").read_text())
        print(f"mean commanded-state divergence: "
              f"{np.mean([e['commanded_state_divergence_m'] for e in result.summary['episodes']]):.2e} m")


if __name__ == "__main__":
    main()
