"""Roll out a batch of jobs that share a schedule, streaming every chunk to its run folders as it is decoded."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.checkpoint import LoadedWorldModel
from worldmodel.diffusion.prediction import takes_warp
from worldmodel.files import atomic_write_json
from worldmodel.rollout.decode import decoded_chunks
from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine
from worldmodel.rollout.jobs import RolloutJob
from worldmodel.rollout.latents_file import StreamingSafetensors
from worldmodel.rollout.motion import motion_metrics
from worldmodel.rollout.plan_plot import chunk_summary, plot_plan
from worldmodel.rollout.sinks import RunFiles, RunWriter
from worldmodel.rollout.warp_baseline import warp_baseline_psnr
from worldmodel.rollout.warp_start import WarpStart, checked_warp_start
from worldmodel.viz import from_uint8
from worldmodel.viz.report import write_rollout_report


@dataclass
class RunOutcome:
    """What one job wrote and measured."""

    job: RolloutJob
    folder: Path
    files: RunFiles
    metrics: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.folder / "report.html"


def _metrics(files: RunFiles, seconds: float, batch: int, predicted: int,
             psnr_warp: list[float] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds_generate_batch": round(seconds, 3),
                           "seconds_per_generated_frame": round(seconds / max(1, batch * predicted), 4)}
    if files.psnr_model:
        out.update(psnr_model=float(np.mean(files.psnr_model)),
                   psnr_copy_last_frame=float(np.mean(files.psnr_copy_last_frame)),
                   psnr_model_per_frame=np.round(files.psnr_model, 3).tolist(),
                   psnr_copy_last_frame_per_frame=np.round(files.psnr_copy_last_frame, 3).tolist())
        if psnr_warp is not None:
            out.update(psnr_warp_last_frame=float(np.mean(psnr_warp)),
                       psnr_warp_last_frame_per_frame=np.round(psnr_warp, 3).tolist())
    return out


def _truth_iter(job: RolloutJob) -> Iterator[np.ndarray | None]:
    if job.truth is None:
        while True:
            yield None
    yield from job.truth()


def encode_references(loaded: LoadedWorldModel, references: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 reference frames, one (k, V, H, W, 3) array per video -> latents (B, k, V, C, h, w) on `device`."""
    return loaded.codec.encode_video(from_uint8(np.stack(references)).to(device))


def warp_start_for(loaded: LoadedWorldModel, jobs: Sequence[RolloutJob], tau: float | None) -> WarpStart | None:
    """The warp of a batch (None when neither `tau` nor a warp-conditioned model asks for it); with `tau`, a job it
    cannot warp is named in a WarpStartError."""
    return checked_warp_start(loaded.codec, [j.name for j in jobs], [j.calibration for j in jobs],
                              [j.plan for j in jobs], jobs[0].fps, tau, condition=takes_warp(loaded.model))


class BatchRunner:
    """Generates a batch of jobs chunk by chunk; decoded frames go straight into each job's writers."""

    def __init__(self, loaded: LoadedWorldModel, sampler: Any, schedule: ChunkSchedule, device: torch.device,
                 autocast_dtype: torch.dtype | None, progress: bool = True, warp_start: float | None = None) -> None:
        """`warp_start`: None, or the diffusion time at which each chunk starts from its warped last frame."""
        self.loaded, self.schedule, self.device = loaded, schedule, device
        self.engine = RolloutEngine(loaded.model, sampler, schedule, autocast_dtype=autocast_dtype)
        self.progress = progress
        self.warp_start = warp_start

    @torch.no_grad()
    def run(self, jobs: Sequence[RolloutJob], folders: Sequence[Path], base_manifest: dict[str, Any]) -> list[RunOutcome]:
        """Roll out `jobs` together; job i writes into folders[i]. Files appear only once complete."""
        s, device = self.schedule, self.device
        num_frames = jobs[0].num_frames
        if any(j.num_frames != num_frames for j in jobs):
            raise ValueError("a batch needs jobs of one length; group them by schedule and frame count")
        k = s.first_reference
        # Before any file is opened, so a job it cannot warp fails without leaving partial files.
        self.engine.start = warp_start_for(self.loaded, jobs, self.warp_start)
        reference = encode_references(self.loaded, [j.reference for j in jobs], device)
        writers = [RunWriter(f, j.cameras, j.fps, num_frames, k, j.truth is not None,
                             keep_camera=None if j.front is None else j.front.index) for j, f in zip(jobs, folders)]
        truths = [_truth_iter(j) for j in jobs]
        latent_shape = (num_frames, *reference.shape[2:])
        latent_files = [StreamingSafetensors(f / "latents.safetensors", "latents", latent_shape,
                                             metadata={"name": j.name, "seed": str(j.seed), "fps": str(j.fps)})
                        for j, f in zip(jobs, folders)]
        started = time.perf_counter()
        failed = True
        try:
            with contextlib.ExitStack() as stack:
                for lf in latent_files:
                    stack.enter_context(lf)
                for chunk, frames in decoded_chunks(self.loaded.codec, self.engine, reference, [j.plan for j in jobs],
                                                    [j.seed for j in jobs], num_frames, device, self.progress):
                    for b, (writer, lf) in enumerate(zip(writers, latent_files)):
                        lf.append(chunk[b])
                        for frame in frames[b]:  # (V, H, W, 3)
                            writer.push(frame, next(truths[b]))
            seconds = time.perf_counter() - started
            outcomes = [w.close() for w in writers]
            failed = False
        finally:
            if failed:
                for w in writers:
                    w.close(failed=True)
        # After the timing: the baseline's warps are not the model's cost.
        warp_scores = warp_baseline_psnr(self.loaded.codec, s, jobs, reference, device) or [None] * len(jobs)
        return [self._finish(job, folder, files, seconds, len(jobs), base_manifest, warp)
                for job, folder, files, warp in zip(jobs, folders, outcomes, warp_scores)]

    def _finish(self, job: RolloutJob, folder: Path, files: RunFiles, seconds: float, batch: int,
                base_manifest: dict[str, Any], psnr_warp: list[float] | None = None) -> RunOutcome:
        s = self.schedule
        horizon_s = (job.num_frames - 1) / job.fps
        starts_s = [start / job.fps for start in s.starts if start < job.num_frames]
        plot = plot_plan(folder / "action_plan.png", job.ego, starts_s, horizon_s, job.plan[: len(starts_s)],
                         title=f"{job.name}: ego plan per chunk")
        metrics = _metrics(files, seconds, batch, job.num_frames - s.first_reference, psnr_warp)
        if job.front is not None:  # its writer kept the front camera's frames
            commanded = None if job.ego is None else job.ego.poses[: job.num_frames]
            metrics.update(motion_metrics(files.front_generated, files.front_truth, job.front, job.fps, commanded))
        atomic_write_json(folder / "metrics.json", metrics)
        chunks = [{"starts_at_s": round(t, 2), **row} for t, row in zip(starts_s, chunk_summary(job.plan))]
        videos = [("generated (camera mosaic)" if len(job.cameras) > 1 else "generated", files.mosaic)]
        if files.side_by_side is not None:
            videos.append(("ground truth | generated", files.side_by_side))
        videos += [(camera, path) for camera, path in files.cameras.items()]
        manifest = {**base_manifest, "name": job.name, "seed": int(job.seed),
                    "seed_source": job.info.get("seed_source"), "scenario": job.info,
                    "frames": job.num_frames, "fps": job.fps, "cameras": job.cameras, "chunks": chunks,
                    "chunk_starts": [int(v) for v in s.starts], "timings": {k: v for k, v in metrics.items()
                                                                             if k.startswith("seconds")},
                    "files": {"videos": {label: p.name for label, p in videos}, "contact_sheet": files.contact_sheet.name,
                              "latents": "latents.safetensors", "action_plan": plot.name, "report": "report.html",
                              "metrics": "metrics.json"}}
        atomic_write_json(folder / "manifest.json", manifest)
        headline = {k: v for k, v in metrics.items() if not k.endswith("per_frame")}
        write_rollout_report(
            folder, title=f"Rollout: {job.name}",
            subtitle=f"{job.num_frames} frames at {job.fps:g} Hz ({job.num_frames / job.fps:.1f} s), {len(job.cameras)} camera(s), "
                     f"seed {job.seed}; {job.info.get('description', '')}",
            videos=videos, plot=plot, sheet=files.contact_sheet, chunks=chunks, metrics=headline,
            details={"checkpoint": base_manifest.get("checkpoint"), "checkpoint step": base_manifest.get("step"),
                     "sampler steps": base_manifest.get("sampler_steps"), "CFG scale": base_manifest.get("cfg_scale"),
                     "warp start": base_manifest.get("warp_start"), "reference frames": s.first_reference,
                     "carried frames": s.carry_frames,
                     "chunk frames": s.chunk_frames, "device": base_manifest.get("device")})
        return RunOutcome(job, folder, files, metrics, manifest)
