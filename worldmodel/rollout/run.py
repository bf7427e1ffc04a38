"""`rollout(cfg)`: roll a trained model forward on scenarios (or held-out clips); videos, latents, reports.

Two modes: `scenario=NAME_OR_PATH` (or a list of them) runs scenario files of the library in
rollout/; `scenario=null` runs the batch mode over held-out clips of the dataset the model was
trained on. Every run gets its own folder (scenario name, or clip000, clip001, ...).
"""
from __future__ import annotations

import inspect
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from worldmodel.checkpoint import LoadedWorldModel, load_world_model
from worldmodel.data.actions import DEFAULT_ACTION_TIMES
from worldmodel.data.errors import CorruptFileError, DatasetError
from worldmodel.data.robust import read_exact
from worldmodel.diffusion.prediction import takes_warp
from worldmodel.files import atomic_write_json
from worldmodel.rollout.batch import BatchRunner, RunOutcome, warp_start_for
from worldmodel.rollout.engine import ChunkSchedule
from worldmodel.rollout.jobs import ModelRig, RolloutJob, clip_job
from worldmodel.rollout.scenario import load_scenario, resolve_scenario
from worldmodel.rollout.seeds import cli_seed, resolve_seed, shared_seed
from worldmodel.rollout.sources import scenario_job
from worldmodel.runtime import pick_device, sampling_precision, with_sampler_overrides
from worldmodel.safe_build import build_stored_config, stored_class


@dataclass
class RolloutResult:
    """What a rollout wrote, and its PSNR against the truth next to the copy-last-frame baseline (and the
    warp-last-frame one where every run can be warped)."""

    run_dir: Path
    videos: list[Path]
    sheets: list[Path]
    metrics: dict[str, Any]
    runs: list[RunOutcome]


def held_out_dataset(loaded: LoadedWorldModel, split: str, num_frames: int, needed: int | None = None) -> Any:
    """The checkpoint's validation reader on `split`, with clips of `num_frames` frames.

    Generated datasets (the procedural world) are asked for `needed` clips; recorded ones have what they have.
    """
    reader = dict(loaded.config.get("data", {}).get("val") or {})
    if "_target_" not in reader:
        raise ValueError(f"{loaded.source}: its run config names no dataset to take held-out clips from")
    reader.update(split=split, num_frames=num_frames)
    # A stranger's export names this reader: only worldmodel's own classes are imported or built (safe_build.py).
    reader_class = stored_class(reader, "data.val", loaded.source)
    if needed is not None and "num_clips" in inspect.signature(reader_class).parameters:
        reader["num_clips"] = needed
    return build_stored_config(reader, "data.val", loaded.source)


def _held_out_clips(loaded: LoadedWorldModel, cfg: DictConfig, total_frames: int) -> list[dict[str, Any]]:
    needed = cfg.clips.first_clip + cfg.clips.num_clips
    dataset = held_out_dataset(loaded, cfg.clips.split, total_frames, needed)
    if len(dataset) < needed:
        raise DatasetError(f"the {cfg.clips.split} split has {len(dataset)} clips of {total_frames} frames; "
                           f"clips.first_clip + clips.num_clips = {needed}: ask for fewer clips or chunks")
    clips = []
    for i in range(cfg.clips.first_clip, needed):
        try:
            # Clip i itself: a reader would otherwise hand the next readable clip, and its video and PSNR would be
            # written under clip i's name.
            clips.append(read_exact(dataset, i))
        except CorruptFileError as err:
            raise DatasetError(f"clip {i} of the {cfg.clips.split} split cannot be read ({err}): fix or remove the "
                               f"file, or pick other clips with clips.first_clip= / clips.num_clips=") from err
    return clips


def _scenario_names(value: Any) -> list[str]:
    if isinstance(value, (list, tuple, ListConfig)):
        return [str(v) for v in value]
    return [str(value)]


def clip_jobs(loaded: LoadedWorldModel, cfg: DictConfig, rig: ModelRig) -> list[tuple[ChunkSchedule, RolloutJob]]:
    """Batch mode: held-out clips, each with its recorded motion as the plan and itself as ground truth."""
    schedule = ChunkSchedule(rig.chunk_frames, cfg.first_reference, cfg.carry_frames, cfg.num_chunks)
    # Each chunk's actions look DEFAULT_ACTION_TIMES past its first frame: read that much more of
    # the recording than the video shows, or the last chunks would have no valid actions.
    lookahead = math.ceil(max(DEFAULT_ACTION_TIMES) * rig.fps - 1e-9)
    clips = _held_out_clips(loaded, cfg, schedule.total_frames + lookahead)
    jobs = []
    seed, seed_source = resolve_seed(cli_seed(cfg.seed), None)  # clips carry no seed: the command line's or 0
    for i, clip in enumerate(clips):
        index = cfg.clips.first_clip + i
        info = {"mode": "clips", "split": cfg.clips.split, "clip": index, "seed_source": seed_source}
        jobs.append((schedule, clip_job(f"clip{index:03d}", clip, schedule, cfg.first_reference,
                                        schedule.total_frames, seed + index, info)))
    return jobs


def scenario_jobs(cfg: DictConfig, rig: ModelRig) -> list[tuple[ChunkSchedule, RolloutJob]]:
    """Scenario mode: each scenario's horizon (or `horizon_s`) in frames of the model's rate."""
    jobs = []
    for name in _scenario_names(cfg.scenario):
        scenario = load_scenario(resolve_scenario(name))
        # The seed rule (worldmodel/rollout/seeds.py): seed= on the command line, else the file's, else 0.
        seed, seed_source = resolve_seed(cli_seed(cfg.seed), scenario.seed)
        scenario = replace(scenario, seed=seed)
        horizon = float(cfg.horizon_s) if cfg.horizon_s is not None else scenario.horizon_s
        num_frames = max(int(round(horizon * rig.fps)), rig.chunk_frames)
        schedule = ChunkSchedule.for_horizon(rig.chunk_frames, cfg.first_reference, cfg.carry_frames, num_frames)
        job = scenario_job(scenario, rig, schedule, cfg.first_reference, num_frames)
        job.info["seed_source"] = seed_source  # beside the scenario's seed in each run's manifest
        jobs.append((schedule, job))
    names = [job.name for _, job in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario names must differ within one run (they name the run folders): {names}")
    return jobs


def _summary(outcomes: Sequence[RunOutcome], protocol: dict[str, Any]) -> dict[str, Any]:
    """Run-level metrics: per-run PSNR and, over runs with ground truth, the mean curves."""
    with_truth = [o.metrics for o in outcomes if "psnr_model" in o.metrics]
    out: dict[str, Any] = {"protocol": protocol, "runs": {o.job.name: o.metrics for o in outcomes}}
    if with_truth:
        length = min(len(m["psnr_model_per_frame"]) for m in with_truth)
        keys = ["psnr_model", "psnr_copy_last_frame"]
        if all("psnr_warp_last_frame" in m for m in with_truth):
            keys.append("psnr_warp_last_frame")
        for key in keys:
            curves = np.array([m[f"{key}_per_frame"][:length] for m in with_truth])
            out[key] = float(curves.mean())
            out[f"{key}_per_frame"] = curves.mean(axis=0).round(3).tolist()
    return out


def rollout(cfg: DictConfig) -> RolloutResult:
    """Run every job of the config, batch by batch, and write run-level metrics.json and manifest.json."""
    started = time.perf_counter()
    cli_seed(cfg.seed)  # a bad seed= fails before the checkpoint loads
    run_dir = Path(cfg.run_dir).expanduser().resolve()
    device = pick_device(cfg.device)
    precision = sampling_precision(cfg.precision, device)  # a bad precision= fails before the checkpoint loads
    loaded = load_world_model(cfg.checkpoint, device=device, weights_dtype=precision.weights)
    sampler = with_sampler_overrides(loaded.sampler, cfg.num_steps, cfg.cfg_scale, cfg.churn,
                                     cfg.reference_noise)
    rig = ModelRig.from_run_config(loaded.config)
    jobs = scenario_jobs(cfg, rig) if cfg.scenario is not None else clip_jobs(loaded, cfg, rig)
    warp_start = None if cfg.warp_start is None else float(cfg.warp_start)
    warp_start_for(loaded, [job for _, job in jobs], warp_start)  # fails here, before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    evaluations = sampler.evaluations(1.0 if warp_start is None else warp_start)  # per chunk
    base = {"checkpoint": str(loaded.source), "step": loaded.step, "device": str(device),
            "precision": precision.label, "sampler_steps": sampler.num_steps,
            "sampler_evaluations": evaluations,
            "cfg_scale": sampler.cfg_scale, "sampler_churn": sampler.churn,
            "sampler_reference_noise": getattr(sampler, "reference_noise", 0.0), "warp_start": warp_start,
            "warp_condition": takes_warp(loaded.model), "config": OmegaConf.to_container(cfg, resolve=True)}

    groups: dict[tuple[ChunkSchedule, int], list[RolloutJob]] = defaultdict(list)
    for schedule, job in jobs:
        groups[(schedule, job.num_frames)].append(job)
    outcomes: list[RunOutcome] = []
    for (schedule, _), members in groups.items():
        runner = BatchRunner(loaded, sampler, schedule, device, precision.autocast, progress=bool(cfg.progress),
                             warp_start=warp_start)
        for i in range(0, len(members), int(cfg.batch_size)):
            batch = members[i : i + int(cfg.batch_size)]
            outcomes += runner.run(batch, [run_dir / job.name for job in batch],
                                   {**base, "batch": [job.name for job in batch]})

    schedule0 = jobs[0][0]
    protocol = {"mode": "scenario" if cfg.scenario is not None else "clips", "runs": len(outcomes),
                "clips": len(outcomes), "split": cfg.clips.split if cfg.scenario is None else None,
                "first_reference": schedule0.first_reference, "carry_frames": schedule0.carry_frames,
                "chunk_frames": schedule0.chunk_frames, "frames": outcomes[0].job.num_frames,
                "predicted_frames": outcomes[0].job.num_frames - schedule0.first_reference,
                "chunks": schedule0.num_chunks, "fps": rig.fps, "sampler_steps": sampler.num_steps,
                "sampler_evaluations": evaluations,
                "cfg_scale": sampler.cfg_scale, "sampler_churn": sampler.churn, "warp_start": warp_start,
                "warp_condition": takes_warp(loaded.model), "checkpoint_step": loaded.step}
    metrics = _summary(outcomes, protocol)
    atomic_write_json(run_dir / "metrics.json", metrics)
    videos = [p for o in outcomes for p in (o.files.mosaic, o.files.side_by_side) if p is not None]
    # Top level: batch mode's base seed (clip i: seed + i); scenario mode's seed where all runs share it.
    seeds = (dict(zip(("seed", "seed_source"), resolve_seed(cli_seed(cfg.seed), None))) if cfg.scenario is None
             else shared_seed([(o.job.seed, o.job.info["seed_source"]) for o in outcomes]))
    atomic_write_json(run_dir / "manifest.json", {
        **base, **seeds, "runs": {o.job.name: {"folder": o.folder.name, "seed": o.job.seed,
                                               "seed_source": o.job.info["seed_source"],
                                               "report": f"{o.folder.name}/report.html"} for o in outcomes},
        "videos": [str(p) for p in videos], "seconds_total": round(time.perf_counter() - started, 3)})
    return RolloutResult(run_dir=run_dir, videos=videos, sheets=[o.files.contact_sheet for o in outcomes],
                         metrics=metrics, runs=outcomes)
