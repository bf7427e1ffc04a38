"""`rollout(cfg)`: roll a trained model forward from held-out clips; videos, sheets, latents, metrics."""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save_file

from worldmodel.checkpoint import LoadedWorldModel, load_world_model
from worldmodel.eval.psnr import psnr
from worldmodel.files import atomic_path, atomic_write_json
from worldmodel.rollout.actions import recorded_chunk_actions, stack_plans
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.viz import camera_mosaic, from_uint8, contact_sheet, save_png, side_by_side, to_uint8, write_video


@dataclass
class RolloutResult:
    """What a rollout wrote, and its PSNR against the truth next to the copy-last-frame baseline."""

    run_dir: Path
    videos: list[Path]
    sheets: list[Path]
    metrics: dict[str, Any]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _held_out_clips(loaded: LoadedWorldModel, cfg: DictConfig, total_frames: int) -> list[dict[str, Any]]:
    data = loaded.config.get("data", {})
    reader = dict(data.get("val") or {})
    if "_target_" not in reader:
        raise ValueError(f"{loaded.source}: its run config names no dataset to take held-out clips from")
    needed = cfg.clips.first_clip + cfg.clips.num_clips
    reader.update(split=cfg.clips.split, num_frames=total_frames)
    if "num_clips" in inspect.signature(get_class(reader["_target_"])).parameters:
        reader["num_clips"] = needed  # generated datasets (the procedural world) make as many as asked
    dataset = instantiate(reader, _convert_="all")
    if len(dataset) < needed:
        raise ValueError(f"the {cfg.clips.split} split has {len(dataset)} clips of {total_frames} frames; "
                         f"clips.first_clip + clips.num_clips = {needed}: ask for fewer clips or chunks")
    return [dataset[i] for i in range(cfg.clips.first_clip, cfg.clips.first_clip + cfg.clips.num_clips)]


def _apply_sampler_overrides(sampler: Any, cfg: DictConfig) -> Any:
    for key in ("num_steps", "cfg_scale"):
        if cfg[key] is not None:
            setattr(sampler, key, type(getattr(sampler, key))(cfg[key]))
    return sampler


def rollout(cfg: DictConfig) -> RolloutResult:
    """Generate `num_chunks` chunks per held-out clip and write everything under `cfg.run_dir`."""
    started = time.perf_counter()
    run_dir = Path(cfg.run_dir).expanduser().resolve()
    device = pick_device(cfg.device)
    loaded = load_world_model(cfg.checkpoint, device=device)
    sampler = _apply_sampler_overrides(loaded.sampler, cfg)
    chunk_frames = int(loaded.config["data"]["val"]["num_frames"])
    schedule = ChunkSchedule(chunk_frames, cfg.first_reference, cfg.carry_frames, cfg.num_chunks)
    clips = _held_out_clips(loaded, cfg, schedule.total_frames)
    run_dir.mkdir(parents=True, exist_ok=True)

    frames = torch.from_numpy(np.stack([c["frames"] for c in clips]))  # (B, T, V, H, W, 3)
    with torch.no_grad():
        reference = loaded.codec.encode_video(from_uint8(frames[:, : schedule.first_reference]).to(device))
    plan = stack_plans([recorded_chunk_actions(c["meta"], schedule, frames.shape[3:5]) for c in clips])
    plan = [(v.to(device), m.to(device)) for v, m in plan]
    generator = torch.Generator(device=device).manual_seed(int(cfg.seed))
    engine = RolloutEngine(loaded.model, sampler, schedule)
    t0 = time.perf_counter()
    latents = engine.generate(reference, plan, generator=generator, progress=True)
    generate_s = time.perf_counter() - t0
    with torch.no_grad():
        video = to_uint8(loaded.codec.decode_video(latents.to(device)).float().cpu())  # (B, T, V, H, W, 3)
    truth = frames.numpy()

    # The baseline every world model must beat: hold the last reference frame still.
    k = schedule.first_reference
    copy_last = np.repeat(truth[:, k - 1 : k], truth.shape[1] - k, axis=1)
    model_psnr = psnr(video[:, k:], truth[:, k:]).mean(axis=2)  # (B, T-k), mean over views
    copy_psnr = psnr(copy_last, truth[:, k:]).mean(axis=2)
    fps = float(clips[0]["meta"]["fps"])
    videos, sheets = [], []
    for i, clip in enumerate(clips):
        cameras = list(clip["meta"]["cameras"])
        gen, gt = camera_mosaic(video[i], cameras), camera_mosaic(truth[i], cameras)
        clip_dir = run_dir / f"clip{cfg.clips.first_clip + i:03d}"
        clip_dir.mkdir(parents=True, exist_ok=True)
        write_video(clip_dir / "generated.mp4", gen, fps=fps)
        write_video(clip_dir / "side_by_side.mp4", side_by_side([gt, gen], ["ground truth", "generated"]), fps=fps)
        save_png(clip_dir / "contact_sheet.png", contact_sheet([gt, gen], ["ground truth", "generated"]))
        videos += [clip_dir / "generated.mp4", clip_dir / "side_by_side.mp4"]
        sheets.append(clip_dir / "contact_sheet.png")
    with atomic_path(run_dir / "latents.safetensors") as tmp:
        save_file({f"clip{cfg.clips.first_clip + i:03d}": latents[i].contiguous() for i in range(len(clips))},
                  str(tmp))

    metrics = {
        "protocol": {"clips": len(clips), "split": cfg.clips.split, "first_reference": k,
                     "frames": schedule.total_frames, "predicted_frames": schedule.total_frames - k,
                     "chunks": schedule.num_chunks, "carry_frames": schedule.carry_frames,
                     "fps": fps, "sampler_steps": sampler.num_steps, "cfg_scale": sampler.cfg_scale,
                     "seed": int(cfg.seed), "checkpoint_step": loaded.step},
        "psnr_model": float(model_psnr.mean()),
        "psnr_copy_last_frame": float(copy_psnr.mean()),
        "psnr_model_per_frame": model_psnr.mean(axis=0).round(3).tolist(),
        "psnr_copy_last_frame_per_frame": copy_psnr.mean(axis=0).round(3).tolist(),
        "seconds_generate": round(generate_s, 3),
        "generated_frames_per_second": round(len(clips) * (schedule.total_frames - k) / generate_s, 3),
    }
    atomic_write_json(run_dir / "metrics.json", metrics)
    atomic_write_json(run_dir / "manifest.json", {
        "checkpoint": str(loaded.source), "seed": int(cfg.seed), "device": str(device),
        "config": OmegaConf.to_container(cfg, resolve=True), "videos": [str(p) for p in videos],
        "seconds_total": round(time.perf_counter() - started, 3)})
    return RolloutResult(run_dir=run_dir, videos=videos, sheets=sheets, metrics=metrics)
