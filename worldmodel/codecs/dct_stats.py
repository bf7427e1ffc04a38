"""Measure the DCT codec's per-channel latent mean and spread on a training config's clips.

    python -m worldmodel.codecs.dct_stats [--clips N] [train overrides ...]
    e.g. python -m worldmodel.codecs.dct_stats experiment=quickstart

prints the `codec.channel_mean` / `codec.channel_std` lines to paste into a codec config (or pass as
`+codec.channel_mean=[...] +codec.channel_std=[...]`), which standardise every latent channel.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from tqdm.auto import tqdm

from worldmodel.codecs.dct import DCTCodec
from worldmodel.config import compose_config
from worldmodel.data.pool import ClipPool


def channel_statistics(codec: DCTCodec, clips: Sequence[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of each raw (unstandardised) latent channel over every frame of `clips`."""
    raw = DCTCodec(block=codec.block, luma=codec.luma, chroma=codec.chroma)
    total = torch.zeros(raw.latent_channels, dtype=torch.float64)
    squares = torch.zeros_like(total)
    count = 0
    for clip in clips:
        frames = torch.from_numpy(np.asarray(clip["frames"]))  # (T, V, H, W, 3) uint8
        frames = frames.reshape(-1, *frames.shape[-3:]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        latents = raw.encode(frames).double()  # (T V, C, h, w)
        total += latents.sum(dim=(0, 2, 3))
        squares += latents.square().sum(dim=(0, 2, 3))
        count += latents.shape[0] * latents.shape[2] * latents.shape[3]
    if count == 0:
        raise ValueError("channel_statistics needs at least one clip")
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    # Four significant digits: short enough to paste, and a faint channel's spread never prints as 0.
    return [float(f"{float(m):.4g}") for m in mean], [float(f"{float(s):.4g}") for s in std]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=64, help="training clips to measure (default 64)")
    parser.add_argument("overrides", nargs="*", help="train config overrides, e.g. experiment=quickstart")
    args = parser.parse_args(argv)
    cfg = compose_config("train", args.overrides)
    if not str(cfg.codec.get("_target_", "")).endswith("DCTCodec"):
        raise SystemExit(f"dct_stats measures the DCT codec; this config's codec is {cfg.codec.get('_target_')}")
    codec = DCTCodec(block=cfg.codec.block, luma=cfg.codec.luma, chroma=cfg.codec.chroma)
    if str(cfg.data.train.get("_target_", "")).endswith("LatentCacheClips"):
        raise SystemExit("dct_stats reads frames; a latent cache holds codec latents only: point it at the reader "
                         "the cache was written from (e.g. data=nuscenes)")
    dataset = instantiate(cfg.data.train)
    if isinstance(dataset, ClipPool):
        dataset = dataset.dataset  # read only the clips measured, not the whole pool
    n = min(args.clips, len(dataset))
    # Spread over the whole dataset: a reader's first clips are overlapping windows of its first scene.
    indices = np.unique(np.linspace(0, len(dataset) - 1, n).round().astype(int))
    mean, std = channel_statistics(codec, (dataset[int(i)] for i in tqdm(indices, desc="reading clips")))
    print(f"channel_mean: {mean}")
    print(f"channel_std: {std}")


if __name__ == "__main__":
    main()
