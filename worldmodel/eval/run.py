"""`evaluate(cfg)`: run a protocol on a checkpoint, resumably; metrics.json with the protocol, curves, report page."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from worldmodel.checkpoint import LoadedWorldModel, load_world_model
from worldmodel.data.actions import DEFAULT_ACTION_TIMES
from worldmodel.diffusion.prediction import takes_warp
from worldmodel.eval.accumulate import FVD_RESAMPLE_FRAMES, EvalAccumulator
from worldmodel.eval.features import I3D_SIZE, INCEPTION_SIZE, I3DFeatures, InceptionFeatures
from worldmodel.eval.generate import clip_plans, clip_warp_start, generate_batch
from worldmodel.eval.i3d import MIN_FRAMES
from worldmodel.eval.protocol import EvalProtocol, ProtocolError
from worldmodel.eval.report import write_eval_report
from worldmodel.eval.selection import fid_frame_mask, segments, select_clips
from worldmodel.eval.state import EvalState
from worldmodel.eval.summary import summarize
from worldmodel.eval.unreadable import UnreadableClips, skips_path
from worldmodel.files import atomic_write_json
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.rollout.jobs import ModelRig
from worldmodel.rollout.run import held_out_dataset
from worldmodel.rollout.warp_start import WarpStart, WarpStartError
from worldmodel.runtime import SamplingPrecision, pick_device, sampling_precision, with_sampler_overrides
from worldmodel.safe_build import build_stored_config
from worldmodel.viz import camera_mosaic, side_by_side, write_video


@dataclass
class EvalResult:
    """Where an evaluation wrote its numbers and pages, and the numbers."""

    run_dir: Path
    metrics: dict[str, Any]
    report: Path | None  # None for a shard that finished before the others (it writes no metrics)


def _dataset(protocol: EvalProtocol, loaded: LoadedWorldModel, rig: ModelRig, frames: int, needed: int | None):
    if protocol.dataset is None:
        return held_out_dataset(loaded, protocol.split, frames, needed)
    reader = dict(protocol.dataset)
    if "_target_" not in reader:
        raise ProtocolError(f"protocol {protocol.name!r}: dataset needs a _target_ (a reader class) or null")
    # The model generates at its own frame rate and size: the ground truth is read the same way.
    reader.update(split=protocol.split, num_frames=frames, fps=rig.fps, size=list(rig.size))
    # Protocols travel between people like checkpoints do: only worldmodel's own readers are built (safe_build.py).
    return build_stored_config(reader, "protocol.dataset")


def _check_views(clip: dict[str, Any], loaded: LoadedWorldModel, protocol: EvalProtocol) -> None:
    views = np.asarray(clip["frames"]).shape[1]
    expected = int(getattr(loaded.model.config, "num_views", 1))
    if views != expected:
        raise ProtocolError(
            f"protocol {protocol.name!r} reads {views} camera(s) per clip but the checkpoint generates {expected}: "
            f"use a {'multi-view' if views > 1 else 'single-view'} checkpoint or set the protocol's dataset.views")


def _sample_video(path: Path, truth: np.ndarray, generated: np.ndarray, cameras: list[str], fps: float) -> Path:
    panel = side_by_side([camera_mosaic(truth, cameras), camera_mosaic(generated, cameras)],
                         ["ground truth", "generated"], counter=True, fps=fps)
    return write_video(path, panel, fps=fps)


def _protocol_record(protocol: EvalProtocol, rig: ModelRig, schedule: ChunkSchedule, frames: int,
                     indices: list[int], dataset_size: int, sampler: Any, loaded: LoadedWorldModel,
                     precision: SamplingPrecision, seg: list[tuple[str, int, int]],
                     warp_start: float | None) -> dict[str, Any]:
    """What decided the numbers, written next to them."""
    k = protocol.first_reference
    return {
        **protocol.to_dict(),
        "resolved": {
            "videos": len(indices), "clips_in_split": dataset_size, "clip_indices": indices,
            "frames_per_video": frames, "reference_frames": k, "predicted_frames": frames - k,
            "reference_frames_scored": False, "fps": rig.fps, "size": list(rig.size),
            "chunk_frames": schedule.chunk_frames, "carry_frames": schedule.carry_frames, "chunks": schedule.num_chunks,
            "segments": [{"label": label, "first_frame": a, "end_frame": b} for label, a, b in seg],
            "sampler_steps": sampler.num_steps, "cfg_scale": sampler.cfg_scale, "sampler_churn": sampler.churn,
            "sampler_evaluations": sampler.evaluations(1.0 if warp_start is None else warp_start),
            "warp_start": warp_start, "warp_condition": takes_warp(loaded.model),
            "precision": precision.label,
            "noise_seed_of_video_i": f"{protocol.seed} + i",
            "fid_features": f"Inception-v3 TF 2015-12-05 pool3 2048-d, bilinear antialiased resize to "
                            f"{INCEPTION_SIZE}x{INCEPTION_SIZE}, x/128-1",
            "fid_frames": "every predicted frame of every camera" if protocol.fid_frames is None
            else f"{protocol.fid_frames} predicted frames drawn with seed {protocol.seed}",
            "fvd_features": f"I3D Kinetics-400 logits 400-d, frames resized to {I3D_SIZE}x{I3D_SIZE}, x/127.5-1; "
                            f"one clip per video, camera and segment; clips under {MIN_FRAMES} frames repeated "
                            f"to {FVD_RESAMPLE_FRAMES}",
            "checkpoint": str(loaded.source), "checkpoint_step": loaded.step,
        },
    }


def _warp_start(loaded: LoadedWorldModel, clips: list[dict[str, Any]], plans: list[list], names: list[str],
                fps: float, protocol: EvalProtocol, tau: float | None) -> WarpStart | None:
    """The batch's warp start (None without one); a clip it cannot warp is a ProtocolError naming it."""
    try:
        return clip_warp_start(loaded, clips, plans, names, fps, tau)
    except WarpStartError as err:
        raise ProtocolError(f"protocol {protocol.name!r}: {err}") from None


def _state_path(run_dir: Path, shard: int, shards: int) -> Path:
    return run_dir / ("eval_state.pt" if shards == 1 else f"eval_state.shard{shard}-of-{shards}.pt")


def _merge_shards(run_dir: Path, shards: int, fingerprint: str, new_accumulator: Any,
                  total: int) -> EvalAccumulator | None:
    """All shards' statistics in one accumulator once every shard has finished; None while some have not."""
    paths = [_state_path(run_dir, i, shards) for i in range(shards)]
    if not all(p.is_file() for p in paths):
        return None
    merged = new_accumulator()
    for path in paths:
        merged.merge(EvalState(path, fingerprint).load(new_accumulator()))
    return merged if len(merged.done) == total else None


def evaluate(cfg: DictConfig) -> EvalResult:
    """Generate every selected clip's video, score it, and write metrics.json, curves.png and report.html."""
    started = time.perf_counter()
    run_dir = Path(cfg.run_dir).expanduser().resolve()
    protocol = EvalProtocol.from_config(OmegaConf.to_container(cfg.protocol, resolve=True))
    device = pick_device(cfg.device)
    precision = sampling_precision(cfg.precision, device)  # a bad precision= fails before the checkpoint loads
    loaded = load_world_model(cfg.checkpoint, device=device, weights_dtype=precision.weights)
    sampler = with_sampler_overrides(loaded.sampler, cfg.num_steps, cfg.cfg_scale, cfg.churn)
    rig = ModelRig.from_run_config(loaded.config)
    frames = protocol.video_frames(rig.fps)
    k = protocol.first_reference
    schedule = ChunkSchedule.for_horizon(rig.chunk_frames, k, protocol.carry_frames, frames)
    # Later chunks take actions DEFAULT_ACTION_TIMES past their first frame: read that much more.
    lookahead = math.ceil(max(DEFAULT_ACTION_TIMES) * rig.fps - 1e-9) if protocol.use_actions else 0
    dataset = _dataset(protocol, loaded, rig, schedule.total_frames + lookahead, protocol.num_videos)
    indices = select_clips(dataset, protocol.selection, protocol.num_videos)
    # Every selected clip is read as itself; one that cannot be read is skipped and named, or an error.
    unreadable = UnreadableClips(str(cfg.get("unreadable_clips", "skip")), protocol.name)
    first_position, first = unreadable.first_readable(dataset, indices)
    warp_start = None if cfg.get("warp_start") is None else float(cfg.warp_start)
    # Checked on the first clip before anything is written: a refusal leaves the run folder as it was.
    if warp_start is not None:
        _warp_start(loaded, [first], clip_plans([first], schedule, protocol.use_actions),
                    [f"clip{indices[first_position]:05d}"], rig.fps, protocol, warp_start)
    _check_views(first, loaded, protocol)
    views = np.asarray(first["frames"]).shape[1]
    seg = segments(k, frames, rig.fps, protocol.horizon_step_s)
    record = _protocol_record(protocol, rig, schedule, frames, indices, len(dataset), sampler, loaded, precision, seg,
                              warp_start)

    needs_fid, needs_fvd = "fid" in protocol.metrics, "fvd" in protocol.metrics
    inception = InceptionFeatures(cfg.inception_weights).to(device) if needs_fid else None
    i3d = I3DFeatures(cfg.i3d_weights).to(device) if needs_fvd else None

    def new_accumulator() -> EvalAccumulator:
        return EvalAccumulator(
            protocol.metrics, protocol.baselines, seg, k, rig.fps,
            fid_mask=fid_frame_mask(len(indices), frames - k, views, protocol.fid_frames, protocol.seed),
            inception=inception, i3d=i3d, feature_batch=int(cfg.feature_batch), real_floor=protocol.real_floor)

    shard, shards = int(cfg.shard.index), int(cfg.shard.count)
    if not 0 <= shard < shards:
        raise ProtocolError(f"shard.index must lie in [0, shard.count - 1] = [0, {shards - 1}], got {shard}")
    run_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = protocol.fingerprint(
        checkpoint=str(loaded.source), step=loaded.step, sampler_steps=sampler.num_steps,
        cfg_scale=sampler.cfg_scale, churn=sampler.churn, clips=indices, frames=frames, size=list(rig.size),
        precision=precision.fingerprint,
        # Only when set, so that evaluations begun before the warp start existed still resume.
        **({} if warp_start is None else {"warp_start": warp_start}))
    accumulator = new_accumulator()
    state = EvalState(_state_path(run_dir, shard, shards), fingerprint)
    state.restore(accumulator, resume=bool(cfg.resume))

    engine = RolloutEngine(loaded.model, sampler, schedule, autocast_dtype=precision.autocast)
    mine = [p for p in range(len(indices)) if p % shards == shard]
    todo = [p for p in mine if p not in accumulator.done]
    samples = run_dir / "videos"
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=f"eval {protocol.name}",
               unit="video", disable=not cfg.progress)
    batch_size = int(cfg.batch_size)
    for n, i in enumerate(range(0, len(todo), batch_size)):
        batch = todo[i : i + batch_size]
        positions, clips = unreadable.read_batch(dataset, indices, batch, {first_position: first})
        bar.update(len(batch) - len(positions))  # a skipped clip is done with too
        if not positions:
            continue
        names = [f"clip{indices[p]:05d}" for p in positions]
        plans = clip_plans(clips, schedule, protocol.use_actions)
        start = _warp_start(loaded, clips, plans, names, rig.fps, protocol, warp_start)
        generated = generate_batch(loaded, engine, clips, plans, [protocol.seed + p for p in positions], frames,
                                   device, start=start)
        for b, p in enumerate(positions):
            truth = np.asarray(clips[b]["frames"])[:frames]
            name = names[b]
            accumulator.add_video(p, name, generated[b], truth, clips[b]["actions"], clips[b]["meta"])
            if p < int(cfg.write_videos):
                _sample_video(samples / f"{name}.mp4", truth, generated[b], list(clips[b]["meta"]["cameras"]), rig.fps)
            bar.update(1)
        if (n + 1) % int(cfg.save_every_batches) == 0:
            unreadable.save(skips_path(state.path), mine)  # first, so a state never names fewer skips than it had
            state.save(accumulator)
    bar.close()
    unreadable.save(skips_path(state.path), mine)
    state.save(accumulator)
    if shards > 1:
        unreadable.merge_saved(skips_path(_state_path(run_dir, i, shards)) for i in range(shards))
        accumulator = _merge_shards(run_dir, shards, fingerprint, new_accumulator,
                                    len(indices) - len(unreadable.skipped))
        if accumulator is None:
            return EvalResult(run_dir=run_dir, metrics={"protocol": record, "shard": shard, "shards": shards,
                                                        "complete": False}, report=None)

    # Selected is known up front, scored only now: the record names exactly the clips behind the numbers.
    record["resolved"].update(unreadable.resolved(indices, accumulator.done))
    metrics = {"protocol": record, **summarize(accumulator),
               "clips_skipped": len(record["resolved"]["skipped_clips"]),
               "seconds_total": round(time.perf_counter() - started, 1)}
    atomic_write_json(run_dir / "metrics.json", metrics)
    report = write_eval_report(run_dir, metrics, sorted(samples.glob("*.mp4")) if samples.is_dir() else [])
    return EvalResult(run_dir=run_dir, metrics=metrics, report=report)
