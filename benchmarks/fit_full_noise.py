"""Can the tiny network learn the procedural world's motion at all? Fit it at full noise only, then look.

`python -m benchmarks.fit_full_noise [--fps 10] [--steps 1500] [--clips 512] [--model tiny] [model.KEY=VALUE ...]`

No diffusion: every frame after one clean reference is pure noise (tau = 1) and the network is trained
(AdamW 1e-3, batch 8, no action dropout) to output the clean frames: the conditional mean of the future
given the reference and the actions, the hardest part of what a sampler starting from noise asks of it.
Prints the held-out clean-latent MSE per predicted frame next to holding the reference still, then, on
8 held-out test clips decoded to pixels, how far the ego moves and turns in the network's frames and in
the real ones (the rollout's bird's-eye estimate). If the network's frames do not move here, no sampler
or loss weighting will make its videos move: it needs more updates or a better-suited size.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from hydra.utils import instantiate

from worldmodel.codecs import DCTCodec
from worldmodel.config import compose_config
from worldmodel.data.actions import pack_actions
from worldmodel.data.collate import ClipCollator
from worldmodel.data.synthetic import SyntheticDriving
from worldmodel.rollout.motion import front_camera, path_motion, seen_motion
from worldmodel.viz.tensors import from_uint8, to_uint8

NUM_FRAMES, SIZE, BATCH = 8, (64, 128), 8


def encoded_clips(split: str, count: int, fps: float, codec: DCTCodec) -> tuple[torch.Tensor, torch.Tensor,
                                                                               torch.Tensor, list[dict]]:
    """Procedural clips -> latents (N, T, 1, C, h, w), actions (N, 19), action validity (N, 5), the raw clips."""
    dataset = SyntheticDriving(num_clips=count, num_frames=NUM_FRAMES, fps=fps, size=SIZE, split=split)
    clips = [dataset[i] for i in range(count)]
    latents = codec.encode_video(from_uint8(np.stack([np.asarray(c["frames"]) for c in clips])))
    values, valid = pack_actions(ClipCollator((1,))(clips)["actions"])
    return latents, values, valid, clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--model", default="tiny", help="a conf/model preset on the DCT codec's 16 channels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the model, e.g. model.temporal_window=3")
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    started = time.perf_counter()
    codec = DCTCodec()
    train, train_actions, train_valid, _ = encoded_clips("train", args.clips, args.fps, codec)
    test, test_actions, test_valid, test_clips = encoded_clips("test", 8, args.fps, codec)
    model_cfg = compose_config("train", [f"model={args.model}", *args.overrides]).model
    if model_cfg.prediction != "sample":
        raise SystemExit(f"model={args.model} predicts {model_cfg.prediction!r}; this probe needs a preset that "
                         "outputs the clean frame (prediction: sample)")
    model = instantiate(model_cfg, _convert_="all")
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    print(f"{args.clips} training clips at {args.fps:g} Hz encoded in {time.perf_counter() - started:.0f} s; "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")

    is_reference = (torch.arange(NUM_FRAMES) < 1)[None].expand(BATCH, NUM_FRAMES)  # (B, T)
    tau = (~is_reference).float()  # 0 on the reference, 1 on every predicted frame
    keep = is_reference[..., None, None, None, None]  # (B, T, 1, 1, 1, 1)

    def predict(latents: torch.Tensor, actions: torch.Tensor, valid: torch.Tensor, generator=None) -> torch.Tensor:
        b = len(latents)
        noise = torch.randn(latents.shape, generator=generator)
        return model(torch.where(keep[:b], latents, noise), tau[:b], actions=actions, action_valid=valid,
                     is_reference=is_reference[:b])

    copy = ((test[:, :1] - test) ** 2).mean(dim=(0, 2, 3, 4, 5))[1:]  # (T - 1,)
    batches = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        rows = torch.randint(0, args.clips, (BATCH,), generator=batches)
        loss = ((predict(train[rows], train_actions[rows], train_valid[rows]) - train[rows])[:, 1:] ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 250 == 0 or step == args.steps:
            print(f"step {step}: train MSE {loss.item():.4f} ({time.perf_counter() - started:.0f} s)", flush=True)

    model.eval()
    with torch.no_grad():
        estimate = predict(test, test_actions, test_valid, torch.Generator().manual_seed(args.seed))
    mse = ((estimate - test) ** 2).mean(dim=(0, 2, 3, 4, 5))[1:]
    print("\n| predicted frame | " + " | ".join(str(i) for i in range(1, NUM_FRAMES)) + " |")
    print("|---" * NUM_FRAMES + "|")
    print("| network MSE | " + " | ".join(f"{x:.3f}" for x in mse.tolist()) + " |")
    print("| copy MSE | " + " | ".join(f"{x:.3f}" for x in copy.tolist()) + " |")

    frames = to_uint8(codec.decode_video(torch.cat([test[:, :1], estimate[:, 1:]], dim=1)))[:, :, 0]  # (8, T, H, W, 3)
    print(f"\n| test clip | network: m, deg | real video: m, deg | ego track: m, deg |\n|---|---|---|---|")
    for i, clip in enumerate(test_clips):
        meta = clip["meta"]
        camera = front_camera(meta["cameras"], meta["intrinsics"], meta["extrinsics"], pixel_offset=0.5)
        cells = [seen_motion(frames[i], camera, args.fps), seen_motion(np.asarray(clip["frames"])[:, 0], camera, args.fps),
                 path_motion(np.asarray(meta["ego_poses"])[:NUM_FRAMES])]
        print(f"| {i} | " + " | ".join(f"{d:.1f}, {t:.1f}" for d, t in cells) + " |")


if __name__ == "__main__":
    main()
