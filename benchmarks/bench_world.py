"""Frames per second of the procedural world's renderer on one CPU core: `python -m benchmarks.bench_world`."""
import os

# BLAS / OpenMP read these at import time, so they must be set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import time  # noqa: E402

import cv2  # noqa: E402
import torch  # noqa: E402

from worldmodel.data.synthetic import (ProceduralWorld, Renderer, SyntheticDriving, resolve_views,  # noqa: E402
                                       simulate_drive)

WARMUP, FRAMES = 30, 300


def bench_render(rig: str, size: tuple[int, int], seed: int = 0) -> float:
    """Camera frames per second rendering a 30 s random drive (tile generation included after warm-up)."""
    world = ProceduralWorld(seed)
    log = simulate_drive(world, None, duration_s=(WARMUP + FRAMES) / 10.0, fps=10.0, seed=seed)
    renderer = Renderer(world, resolve_views(rig), size)
    for k in range(WARMUP):
        renderer.render(log.poses[k], log.timestamps[k])
    start = time.perf_counter()
    for k in range(WARMUP, WARMUP + FRAMES):
        renderer.render(log.poses[k], log.timestamps[k])
    return FRAMES * len(renderer.cameras) / (time.perf_counter() - start)


def bench_dataset(views: str, size: tuple[int, int], clips: int = 8) -> float:
    """Camera frames per second of whole `SyntheticDriving` clips (world building and simulation included)."""
    ds = SyntheticDriving(num_clips=clips, num_frames=25, views=views, size=size)
    ds[0]
    start = time.perf_counter()
    frames = sum(ds[i]["frames"].shape[0] * ds[i]["frames"].shape[1] for i in range(1, clips))
    return frames / (time.perf_counter() - start)


def main() -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    print(f"{'what':<34}{'camera frames/s':>16}{'rig frames/s':>14}")
    for rig, size in (("front", (144, 256)), ("rig6", (144, 256))):
        fps = bench_render(rig, size)
        print(f"{f'render {rig} {size[0]}x{size[1]}':<34}{fps:>16.0f}{fps / len(resolve_views(rig)):>14.0f}")
    for views, size in (("front", (144, 256)), ("rig6", (144, 256))):
        fps = bench_dataset(views, size)
        print(f"{f'dataset clips {views} {size[0]}x{size[1]}':<34}{fps:>16.0f}{fps / len(resolve_views(views)):>14.0f}")


if __name__ == "__main__":
    main()
