"""Quickstart training steps/s on the CPU (the model, codec and data of `experiment=quickstart`).

    python -m benchmarks.bench_train [--steps 30] [--threads 2] [--windows 1 3 5] [--self-forcing]

One row per temporal attention window (`model.temporal_window`; the quickstart uses 3, the paper 1); with
`--self-forcing` each also gets a row of self-forced steps (`extension=self_forcing`, conf/extension/: the
references are first drawn by the EMA weights with the demo rollout's sampler, two steps from the warp at 0.2).
"""
from __future__ import annotations

import argparse
import time

import torch
from hydra.utils import instantiate

from worldmodel.config import compose_config
from worldmodel.training.train import build_module


def measure(steps: int, overrides: list[str], self_forced: bool = False) -> dict[str, float]:
    cfg = compose_config("train", ["experiment=quickstart", "data.num_workers=0", *overrides])
    module = build_module(cfg, run_config={})
    data = instantiate(cfg.data, _convert_="all")
    loader = iter(data.train_dataloader())
    optimizer = module.configure_optimizers()["optimizer"]
    batches = [next(loader) for _ in range(4)]

    def step(batch) -> None:
        if self_forced:
            (hook,) = module.step_hooks
            batch = hook.self_forced(module, batch)
        loss, _ = module._loss(module.model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        module.ema.update(module.model)

    step(batches[0])  # warm-up
    t0 = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    model_s = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    for _ in range(8):
        next(loader)
    data_s = (time.perf_counter() - t0) / 8
    return {"step_s": model_s, "steps_per_s": 1.0 / model_s, "batch_load_s": data_s,
            "batch": cfg.data.batch_size, "frames": cfg.data.clip.num_frames,
            "size": f"{cfg.data.clip.size[0]}x{cfg.data.clip.size[1]}",
            "params_M": sum(p.numel() for p in module.model.parameters()) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--windows", type=int, nargs="+", default=[3],
                        help="temporal attention windows to time (quickstart: 3; the paper: 1)")
    parser.add_argument("--self-forcing", action="store_true", help="also time self-forced steps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"| preset | temporal window | step | params | batch x frames @ size | train step (s) | steps/s | "
          f"data batch (s, main process) |")
    print(f"|---|---|---|---|---|---|---|---|")
    kinds = [False, True] if args.self_forcing else [False]
    for window in args.windows:
        for forced in kinds:
            overrides = [f"model.temporal_window={window}"]
            if forced:
                overrides += ["extension=self_forcing", "extension.self_forcing.probability=1.0"]
            r = measure(args.steps, overrides, self_forced=forced)
            print(f"| quickstart (tiny) | {window}x{window} | {'self-forced' if forced else 'plain'} | "
                  f"{r['params_M']:.2f} M | {r['batch']} x {r['frames']} @ {r['size']} | {r['step_s']:.3f} | "
                  f"{r['steps_per_s']:.2f} | {r['batch_load_s']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
