"""Clips per second of the file readers, raw vs latent cache: `python -m benchmarks.bench_readers`.

Fabricates small datasets in a temporary folder (a video folder of 30 fps H.264 mp4s, OpenDV
10 Hz JPEG frame folders, and nuScenes / Waymo trees when their test fixtures are importable),
reads 25-frame clips at 288x512 through a DataLoader with 2 workers, then writes each one's latent
cache with the pixel codec (float16) and reads that the same way. Worker start-up is left out:
the clock runs over three epochs after a warm-up epoch (files in the page cache).
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import importlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from worldmodel.codecs import PixelCodec  # noqa: E402
from worldmodel.data import open_dataset  # noqa: E402
from worldmodel.data.cache import LatentCacheClips, write_latent_cache  # noqa: E402
from worldmodel.viz.video import write_video  # noqa: E402

SIZE = (288, 512)
NUM_FRAMES = 25
WORKERS = 2


def _frames(count: int, seed: int) -> np.ndarray:
    """A moving gradient with a little noise: compresses like road video rather than like static noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : SIZE[0], 0 : SIZE[1]]
    base = rng.integers(0, 255, 3)
    out = np.empty((count, *SIZE, 3), np.uint8)
    for k in range(count):
        wave = 60 * np.sin((x + 4 * k) / 23.0) + 40 * np.cos((y - 2 * k) / 17.0)
        for c in range(3):
            out[k, ..., c] = np.clip(base[c] * 0.5 + wave + rng.normal(0, 4, SIZE), 0, 255)
    return out


def make_videos(root: Path) -> Dataset:
    for i in range(2):
        (root / f"trip{i}").mkdir(parents=True)
        write_video(root / f"trip{i}" / "front.mp4", _frames(300, i), fps=30.0)  # 10 s
    return open_dataset("videos", root=root, num_frames=NUM_FRAMES, size=SIZE)


def make_opendv(root: Path) -> Dataset:
    records = []
    for i in range(2):
        vid = f"vid{i:02d}"
        folder = root / "full_images" / "Some_Driver" / vid
        folder.mkdir(parents=True)
        for k, frame in enumerate(_frames(100, 10 + i)):
            Image.fromarray(frame).save(folder / f"{k:09d}.jpg", quality=90)
        records.append({"videoid": vid, "youtuber": "Some Driver", "split": "Train", "start_discard": 90,
                        "end_discard": 60, "length": 3600})
    (root / "meta").mkdir()
    (root / "meta" / "OpenDV-YouTube.json").write_text(json.dumps(records))
    return open_dataset("opendv", root=root, num_frames=NUM_FRAMES, size=SIZE)


def make_nuscenes(root: Path) -> Dataset:
    fixture = importlib.import_module("tests.data.nuscenes_fixture")
    fixture.write_nuscenes(root, [fixture.FakeScene(f"scene-{i:04d}", seconds=6.0) for i in (1, 2)])
    return open_dataset("nuscenes", root=root, split="train", num_frames=NUM_FRAMES, size=SIZE, views="front")


def make_waymo(root: Path) -> Dataset:
    fixture = importlib.import_module("tests.data.waymo_fixture")
    for i in range(2):
        fixture.write_v1_segment(root, "training", fixture.FakeSegment(name=f"100{i}_000_000_020_000", num_frames=60))
    return open_dataset("waymo", root=root, split="training", num_frames=NUM_FRAMES, size=SIZE, views="front")


def clips_per_second(dataset: Dataset, epochs: int = 3) -> float:
    """Clips/s through a DataLoader with WORKERS persistent processes, over `epochs` after a warm-up epoch."""
    loader = DataLoader(dataset, batch_size=1, num_workers=WORKERS, collate_fn=list, shuffle=False,
                        persistent_workers=True)
    for _ in loader:  # starts the workers and warms the page cache
        pass
    start = time.perf_counter()
    count = sum(1 for _ in range(epochs) for _ in loader)
    return count / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    makers: dict[str, Callable[[Path], Dataset]] = {
        "videos (mp4 30 fps)": make_videos, "opendv (jpg frames)": make_opendv,
        "nuscenes (fixture jpgs)": make_nuscenes, "waymo v1 (fixture)": make_waymo}
    print(f"{NUM_FRAMES}-frame clips at {SIZE[0]}x{SIZE[1]}, {WORKERS} DataLoader workers, pixel codec cache (float16)")
    print(f"{'dataset':<26}{'clips':>6}{'raw clips/s':>13}{'cache clips/s':>15}{'cache MB/clip':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in makers.items():
            root = Path(tmp) / name.split()[0]
            try:
                dataset = make(root)
            except (ImportError, ValueError, TypeError, OSError) as err:
                print(f"{name:<26}  skipped: {type(err).__name__}: {str(err).splitlines()[0][:80]}")
                continue
            raw = clips_per_second(dataset)
            cache_dir = Path(tmp) / f"{root.name}-latents"
            write_latent_cache(dataset, PixelCodec(), cache_dir, shard_size=8, progress=False)
            cached = clips_per_second(LatentCacheClips(cache_dir))
            size_mb = sum(p.stat().st_size for p in cache_dir.glob("*.safetensors")) / len(dataset) / 2**20
            shutil.rmtree(cache_dir)
            print(f"{name:<26}{len(dataset):>6}{raw:>13.2f}{cached:>15.2f}{size_mb:>15.1f}")


if __name__ == "__main__":
    main()
