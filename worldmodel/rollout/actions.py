"""The action plan of a rollout: one Vista action vector per chunk, from a clip's recorded ego states."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from worldmodel.data.actions import DEFAULT_ACTION_TIMES, actions_from_ego_states, empty_actions, pack_actions
from worldmodel.rollout.engine import ChunkActions, ChunkSchedule

EGO_STATE_KEYS = ("timestamps", "ego_poses", "ego_speed")


def _front_camera(meta: Mapping[str, Any], image_size: tuple[int, int]) -> dict[str, Any]:
    """The goal point is projected into the front camera; without one it stays invalid."""
    cameras = list(meta.get("cameras", []))
    if "CAM_FRONT" not in cameras or "intrinsics" not in meta or "extrinsics" not in meta:
        return {}
    i = cameras.index("CAM_FRONT")
    return {"intrinsics": np.asarray(meta["intrinsics"])[i], "camera_to_ego": np.asarray(meta["extrinsics"])[i],
            "image_size": tuple(image_size)}


def recorded_chunk_actions(meta: Mapping[str, Any], schedule: ChunkSchedule, image_size: tuple[int, int],
                           action_times: tuple[float, ...] = DEFAULT_ACTION_TIMES) -> list[ChunkActions]:
    """Actions of each chunk, measured from the ego pose at the chunk's first frame.

    Models are trained with actions relative to frame 0 of their clip, so chunk i of a
    rollout uses the recorded motion that starts at frame `schedule.starts[i]`. Clips without
    recorded ego states (e.g. plain videos) get all-invalid actions: unconditional generation.
    """
    if not all(k in meta for k in EGO_STATE_KEYS):
        values, valid = pack_actions(empty_actions())
        return [(values, valid)] * schedule.num_chunks
    camera = _front_camera(meta, image_size)
    timestamps = np.asarray(meta["timestamps"], dtype=np.float64)
    poses = np.asarray(meta["ego_poses"], dtype=np.float64)  # (T, 3) x, y, yaw
    steering = meta.get("ego_steering")
    plan = []
    for start in schedule.starts:
        actions = actions_from_ego_states(
            timestamps=timestamps, positions=poses[:, :2], yaws=poses[:, 2],
            speeds=np.asarray(meta["ego_speed"], dtype=np.float64),
            steering=None if steering is None else np.asarray(steering, dtype=np.float64),
            origin_time=float(timestamps[start]), action_times=action_times, **camera)
        plan.append(pack_actions(actions))
    return plan


def stack_plans(plans: list[list[ChunkActions]]) -> list[ChunkActions]:
    """Per-clip plans -> one batched plan: chunk i gets (B, 19) values and (B, 5) valid flags."""
    return [(torch.cat([p[i][0] for p in plans]), torch.cat([p[i][1] for p in plans]))
            for i in range(len(plans[0]))]
