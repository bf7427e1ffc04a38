"""Peak memory of a rollout against its horizon: a 10 s and a 20 s tiny rollout, each in a fresh process.

    python -m benchmarks.bench_rollout_memory [--horizons 10 20] [--steps 1]

Frames are decoded chunk by chunk and streamed into the video writers, and latents are streamed
into their file, so peak RSS should not grow with the horizon. Each horizon runs in its own
subprocess because ru_maxrss is a high-water mark of the whole process.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

SCENARIO = "straight_cruise"


def random_export(folder: str | Path, model: str = "tiny", views: str = "front", size: tuple[int, int] = (32, 64),
                  num_frames: int = 8, num_steps: int = 1, fps: float = 10.0) -> Path:
    """An export folder of a randomly initialised quickstart model (no training): enough to time and test rollout."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from worldmodel.checkpoint import save_export
    from worldmodel.config import compose_config

    cfg = compose_config("train", [
        "experiment=quickstart", f"model={model}", f"data.clip.views={views}", f"data.clip.size=[{size[0]},{size[1]}]",
        f"data.clip.num_frames={num_frames}", f"data.clip.fps={fps}", f"sampler.num_steps={num_steps}",
        f"run_dir={folder}"])
    import torch

    torch.manual_seed(0)
    network = instantiate(cfg.model, _convert_="all")
    with torch.no_grad():
        # DiT-style zero-initialised output layers make an untrained model ignore its input;
        # small random values there make the output depend on noise, references and actions.
        for param in network.parameters():
            if not param.any():
                param.normal_(0.0, 0.02)
    return save_export(Path(folder) / "export", network, OmegaConf.to_container(cfg, resolve=True), step=0)


def _child(export: str, horizon: float, out: str, steps: int) -> None:
    """Run one rollout in this process and print its peak RSS (MB) as JSON."""
    import torch

    from worldmodel.config import compose_config
    from worldmodel.rollout.run import rollout

    torch.set_num_threads(1)
    cfg = compose_config("rollout", [f"checkpoint={export}", f"scenario={SCENARIO}", f"horizon_s={horizon}",
                                     f"run_dir={out}", f"num_steps={steps}", "device=cpu", "progress=false"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = rollout(cfg)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    frames = result.runs[0].job.num_frames
    print(json.dumps({"horizon_s": horizon, "frames": frames, "peak_rss_mb": round(peak, 1),
                      "rss_before_rollout_mb": round(before, 1)}))


def measure(export: str | Path, horizon: float, steps: int = 1) -> dict[str, float]:
    """Peak RSS of a fresh process that rolls `export` out for `horizon` seconds."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_rollout_memory", "--child", str(export),
                               "--horizon", str(horizon), "--out", out, "--steps", str(steps)],
                              capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
                              env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"rollout subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=float, nargs="+", default=[10.0, 20.0])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--horizon", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.horizon, args.out, args.steps)
        return
    with tempfile.TemporaryDirectory() as folder:
        export = random_export(folder)
        rows = [measure(export, h, args.steps) for h in args.horizons]
    print("| horizon | frames | peak RSS | RSS before rollout | peak / first peak |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['horizon_s']:g} s | {r['frames']} | {r['peak_rss_mb']:.0f} MB | {r['rss_before_rollout_mb']:.0f} MB"
              f" | {r['peak_rss_mb'] / rows[0]['peak_rss_mb']:.3f} |")


if __name__ == "__main__":
    main()
