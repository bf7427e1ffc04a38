"""Scenario -> RolloutJob: reference frames, the action plan per chunk and, where known, ground truth.

Procedural source (exact): the world is built around the script (`world_for_script`), the ego
drives it (`simulate_drive`), each chunk's actions are measured from its first frame, and the
same drive rendered is the ground truth. Dataset and file sources take their reference frames
from the data; a script there is integrated by a kinematic model (`script.integrate_script`).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from dataclasses import replace

import numpy as np

from worldmodel.data.actions import DEFAULT_ACTION_TIMES
from worldmodel.data.images import decode_image, resize_crop
from worldmodel.data.registry import open_dataset
from worldmodel.data.synthetic import CAMERAS, WorldConfig, render_views, resolve_views, simulate_drive, world_for_script
from worldmodel.rollout.engine import ChunkSchedule
from worldmodel.rollout.jobs import EgoTrack, ModelRig, RolloutJob, calibration_of, clip_job, plan_from_meta
from worldmodel.rollout.motion import front_camera
from worldmodel.rollout.scenario import DatasetSource, FilesSource, ProceduralSource, Scenario
from worldmodel.rollout.script import annotate_lane_changes, integrate_script, to_ego_script
from worldmodel.rollout.seeds import resolve_seed
from worldmodel.rollout.yamlmarks import ScenarioError

# Ego states must reach past the last chunk's start by the longest action time.
_STATE_MARGIN_S = max(DEFAULT_ACTION_TIMES) + 0.5


def _noise_seed(scenario: Scenario) -> int:
    """The scenario's seed, or the default where the file names none (the runners put the command line's in)."""
    return resolve_seed(None, scenario.seed)[0]


def _scripted_plan(meta: dict, script: list, schedule: ChunkSchedule, rig: ModelRig) -> list:
    """Measured actions per chunk, with the script's lane changes as the command where they happen."""
    plan = plan_from_meta(meta, schedule, rig.size)
    starts_s = [start / rig.fps for start in schedule.starts]
    return annotate_lane_changes(plan, script, starts_s, max(DEFAULT_ACTION_TIMES))


def drive_duration(schedule: ChunkSchedule, fps: float) -> float:
    """Seconds of ego states a schedule's action plan needs."""
    return (schedule.total_frames - 1) / fps + _STATE_MARGIN_S


def procedural_calibration(names: list[str], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Intrinsics (V, 3, 3) at `size` and camera_to_ego (V, 4, 4) of the procedural rig's cameras `names`."""
    intrinsics = np.stack([CAMERAS[n].intrinsics(size) for n in names]).astype(np.float32)
    extrinsics = np.stack([CAMERAS[n].camera_to_ego() for n in names]).astype(np.float32)
    return intrinsics, extrinsics


def drive_procedural(scenario: Scenario, source: ProceduralSource, script: Any, duration_s: float,
                     fps: float) -> tuple[Any, Any]:
    """The procedural world built around a scenario's script and the ego's drive through it: (world, drive log).

    Traffic that would collide with the ego's path is removed, so the scripted drive stays plausible.
    """
    config = WorldConfig(lanes_forward=source.lanes, time_of_day=source.time_of_day, curves=source.curves)
    if source.traffic is not None:
        config = replace(config, vehicles_per_100m_lane=source.traffic)
    try:
        world = world_for_script(source.seed, script, config, duration_s=duration_s)
        log = simulate_drive(world, script, duration_s=duration_s, fps=fps)
    except ValueError as err:
        raise ScenarioError(scenario.path, "actions", scenario.line_of("actions"),
                            f"the procedural world cannot drive this script: {err}") from err
    world.traffic.remove_conflicts(log.timestamps, log.poses[:, :2])
    return world, log


def procedural_job(scenario: Scenario, source: ProceduralSource, rig: ModelRig, schedule: ChunkSchedule,
                   first_reference: int, num_frames: int) -> RolloutJob:
    """Build the world around the script, drive it, and render references and ground truth from the drive."""
    script = to_ego_script(scenario.actions or ())
    world, log = drive_procedural(scenario, source, script, drive_duration(schedule, rig.fps), rig.fps)
    cameras = [c.name for c in resolve_views(rig.views)]
    track = EgoTrack(log.timestamps, log.poses, log.speeds, log.steering)
    calibration = procedural_calibration(cameras, rig.size)
    plan = _scripted_plan(track.meta(cameras, *calibration), script, schedule, rig)

    def render(k: int) -> np.ndarray:
        return render_views(world, log.poses[k], float(log.timestamps[k]), cameras, rig.size)

    def truth() -> Iterator[np.ndarray]:
        for k in range(num_frames):
            yield render(k)

    reference = np.stack([render(k) for k in range(first_reference)])
    return RolloutJob(name=scenario.name, seed=_noise_seed(scenario), reference=reference, plan=plan, cameras=cameras,
                      fps=rig.fps, num_frames=num_frames, truth=truth, ego=track, info=scenario.to_dict(),
                      front=front_camera(cameras, *calibration, pixel_offset=0.5),
                      calibration=calibration_of(*calibration, pixel_offset=0.5))


def _dataset_views(views: object) -> object:
    # The procedural six-camera rig is the nuScenes rig: readers call it their default (None).
    return None if views == "rig6" else views


def dataset_job(scenario: Scenario, source: DatasetSource, rig: ModelRig, schedule: ChunkSchedule,
                first_reference: int, num_frames: int) -> RolloutJob:
    """Reference frames from a dataset clip; recorded motion (with ground truth) or a kinematic script."""
    follow = scenario.actions is None
    options = {"root": str(source.root), "split": source.split, "fps": rig.fps, "size": rig.size,
               "views": _dataset_views(rig.views), "num_frames": num_frames if follow else first_reference,
               **source.options}
    if not source.root.exists():
        raise ScenarioError(scenario.path, "source.dataset.root", scenario.line_of("source.dataset.root"),
                            f"{source.root} does not exist; this scenario needs your copy of {source.name}")
    dataset = open_dataset(source.name, **options)
    if not 0 <= source.clip < len(dataset):
        raise ScenarioError(scenario.path, "source.dataset.clip", scenario.line_of("source.dataset.clip"),
                            f"clip {source.clip} out of range: {source.name} {source.split} has {len(dataset)} "
                            f"clips of {options['num_frames']} frames")
    clip = dataset[source.clip]
    job = clip_job(scenario.name, clip, schedule, first_reference, num_frames, _noise_seed(scenario),
                   info=scenario.to_dict(), with_truth=follow)
    if follow:
        return job
    meta = clip["meta"]
    track = _scripted_track(scenario, schedule, rig.fps)
    calibration = (meta.get("intrinsics"), meta.get("extrinsics"))
    job.plan = _scripted_plan(track.meta(list(meta["cameras"]), *calibration), to_ego_script(scenario.actions or ()),
                              schedule, rig)
    job.ego = track
    return job


def _scripted_track(scenario: Scenario, schedule: ChunkSchedule, fps: float) -> EgoTrack:
    log = integrate_script(to_ego_script(scenario.actions or ()), drive_duration(schedule, fps), fps)
    return EgoTrack(log.timestamps, log.poses, log.speeds, log.steering)


def _read_frames(scenario: Scenario, source: FilesSource, rig: ModelRig, count: int) -> np.ndarray:
    if source.is_video:
        from worldmodel.data.videos import decode_video_frames, probe_video

        info = probe_video(source.paths[0])
        indices = [int(round((source.start_s + i / rig.fps) * info.fps)) for i in range(count)]
        if indices[-1] >= info.num_frames:
            raise ScenarioError(scenario.path, "source.video", scenario.line_of("source.video"),
                                f"{source.paths[0]} has {info.num_frames} "
                                f"frames; {count} frames from {source.start_s} s need up to frame {indices[-1]}")
        frames = decode_video_frames(source.paths[0], indices, info)
    else:
        if len(source.paths) < count:
            raise ScenarioError(scenario.path, "source.files", scenario.line_of("source.files"),
                                f"{len(source.paths)} images, the rollout needs {count} reference frames")
        frames = np.stack([decode_image(p) for p in source.paths[-count:]])
    return np.stack([resize_crop(f, rig.size) for f in frames])[:, None]  # (k, 1, h, w, 3)


def files_job(scenario: Scenario, source: FilesSource, rig: ModelRig, schedule: ChunkSchedule,
              first_reference: int, num_frames: int) -> RolloutJob:
    """Reference frames from images or a video (one front camera); the script integrated kinematically."""
    if len(resolve_views(rig.views)) != 1:
        raise ScenarioError(scenario.path, "source", scenario.line_of("source"),
                            "image and video sources are single-camera; "
                            "this checkpoint generates several views (use a dataset or procedural source)")
    track = _scripted_track(scenario, schedule, rig.fps)
    plan = _scripted_plan(track.meta(["CAM_FRONT"]), to_ego_script(scenario.actions or ()), schedule, rig)
    return RolloutJob(name=scenario.name, seed=_noise_seed(scenario), reference=_read_frames(scenario, source, rig,
                      first_reference), plan=plan, cameras=["CAM_FRONT"], fps=rig.fps, num_frames=num_frames,
                      ego=track, info=scenario.to_dict())


def scenario_job(scenario: Scenario, rig: ModelRig, schedule: ChunkSchedule, first_reference: int,
                 num_frames: int) -> RolloutJob:
    """The job of one scenario for a checkpoint of format `rig`."""
    builders = {ProceduralSource: procedural_job, DatasetSource: dataset_job, FilesSource: files_job}
    return builders[type(scenario.source)](scenario, scenario.source, rig, schedule, first_reference, num_frames)
