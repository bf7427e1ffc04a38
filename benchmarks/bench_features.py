"""CPU throughput of the FID / FVD feature networks, 2 threads: `python -m benchmarks.bench_features`."""
import os

# BLAS / OpenMP read these at import time, so they must be set before torch is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "2"

import time  # noqa: E402

import torch  # noqa: E402

from worldmodel.eval.features import I3DFeatures, InceptionFeatures  # noqa: E402

THREADS, WARMUP, REPEATS = 2, 2, 3


def frames_per_second(network: torch.nn.Module, batch: torch.Tensor, frames_per_batch: int) -> float:
    """Frames per second over REPEATS timed calls after WARMUP calls (TorchScript specialises on its first calls)."""
    for _ in range(WARMUP):
        network(batch)
    start = time.perf_counter()
    for _ in range(REPEATS):
        network(batch)
    return REPEATS * frames_per_batch / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(THREADS)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 144, 256), dtype=torch.uint8, generator=generator)
    clips = torch.randint(0, 256, (2, 16, 3, 144, 256), dtype=torch.uint8, generator=generator)
    rows = [
        ("Inception-v3 (FID)", "8 images 144x256 -> 299x299", frames_per_second(InceptionFeatures(), images, 8)),
        ("I3D (FVD)", "2 clips x 16 frames 144x256 -> 224x224", frames_per_second(I3DFeatures(), clips, 32)),
    ]
    print(f"| network | batch | frames/s ({THREADS} threads, CPU) |")
    print("|---|---|---|")
    for name, batch, fps in rows:
        print(f"| {name} | {batch} | {fps:.1f} |")


if __name__ == "__main__":
    main()
