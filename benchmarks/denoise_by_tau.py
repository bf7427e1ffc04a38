"""How well a trained world model denoises at each diffusion time, next to copying the reference frame.

`python -m benchmarks.denoise_by_tau <export or .ckpt> [--clips 8] [--seed 0]`

Held-out test clips of the checkpoint's own reader, 1 clean reference frame, every later frame noised to the same tau
(as in training); the network's clean-frame estimate x0_hat = z_tau - tau * v is decoded and scored
against the real frames (PSNR on [0, 1] pixels, frames after the reference). A network whose x0_hat
improves steadily as tau falls is a working denoiser; if its sampled videos still look wrong, the fault
is in what it learned about the future's spread, not in the denoising.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from worldmodel.checkpoint import load_world_model
from worldmodel.data.actions import pack_actions
from worldmodel.data.collate import ClipCollator
from worldmodel.diffusion.prediction import output_to_velocity, prediction_of, sigma_data_of
from worldmodel.rollout.run import held_out_dataset
from worldmodel.viz.tensors import from_uint8

TAUS = (1.0, 0.9, 0.7, 0.5, 0.3, 0.1)


def psnr(estimate: torch.Tensor, real: torch.Tensor) -> float:
    """PSNR in dB of frames in [-1, 1], measured on [0, 1]."""
    mse = (((estimate.clamp(-1, 1) - real) / 2) ** 2).mean().item()
    return float(10 * np.log10(1.0 / mse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    loaded = load_world_model(args.checkpoint)
    model, codec = loaded.model.eval(), loaded.codec
    num_frames = int(loaded.config["data"]["clip"]["num_frames"])
    dataset = held_out_dataset(loaded, "test", num_frames, needed=args.clips)
    clips = [dataset[i] for i in range(args.clips)]
    real = from_uint8(torch.from_numpy(np.stack([np.asarray(c["frames"]) for c in clips])))  # (B, T, V, 3, H, W)
    with torch.no_grad():
        z0 = codec.encode_video(real)  # (B, T, V, C, h, w)
    actions, valid = pack_actions(ClipCollator((1,))(clips)["actions"])
    b, t = z0.shape[:2]
    is_reference = torch.arange(t)[None].expand(b, t) < 1  # (B, T)
    frame = (..., None, None, None, None)  # (B, T) -> (B, T, 1, 1, 1, 1)
    generator = torch.Generator().manual_seed(args.seed)

    print(f"{args.checkpoint}: {args.clips} test clips, {t - 1} frames after 1 reference\n")
    print("| tau | x0_hat PSNR dB |")
    print("|---|---|")
    copy = z0[:, :1].expand_as(z0)
    with torch.no_grad():
        print(f"| copy the reference | {psnr(codec.decode_video(copy)[:, 1:], real[:, 1:]):.2f} |")
        for tau in TAUS:
            eps = torch.randn(z0.shape, generator=generator)
            tau_frames = torch.where(is_reference, 0.0, tau)  # (B, T)
            z_tau = (1 - tau_frames[frame]) * z0 + tau_frames[frame] * eps
            out = model(z_tau, tau_frames, actions=actions, action_valid=valid, is_reference=is_reference)
            velocity = output_to_velocity(out, z_tau, tau_frames, prediction_of(model), sigma_data_of(model))
            x0_hat = z_tau - tau_frames[frame] * velocity
            print(f"| {tau} | {psnr(codec.decode_video(x0_hat)[:, 1:], real[:, 1:]):.2f} |")


if __name__ == "__main__":
    main()
