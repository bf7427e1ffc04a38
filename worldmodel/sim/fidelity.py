"""Closed-loop fidelity: the world model against the procedural simulator, same policy actions, same seeds.

Each episode is driven closed-loop in `WorldModelEnv` by the policy; the same actions are replayed in
`ProceduralEnv` from the same scenario and seed, so both egos take identical states (checked: the commanded
state divergence is reported and is 0 up to float error) and the procedural renderer gives the true frames.
Per second of closed-loop driving it reports PSNR and SSIM of the generated frames against the truth (with
the copy-the-last-reference-frame PSNR as the baseline to beat), FVD when enough episodes and the I3D
weights exist (else null, with the reason), and how far the ego motion the generated video *shows* drifts
from the true ego motion: the front camera's visual odometry (`worldmodel.eval.ego_motion`) integrated
into a path, on the generated frames and, as the estimator's own floor, on the true frames.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from worldmodel.data.actions import relative_pose  # noqa: E402
from worldmodel.data.synthetic import CAMERAS  # noqa: E402
from worldmodel.eval.action_following import integrate  # noqa: E402
from worldmodel.eval.ego_motion import estimate_ego_motion  # noqa: E402
from worldmodel.eval.psnr import psnr  # noqa: E402
from worldmodel.eval.ssim import ssim  # noqa: E402
from worldmodel.files import atomic_path, atomic_write_json  # noqa: E402
from worldmodel.sim.env import WorldModelEnv  # noqa: E402
from worldmodel.sim.procedural import ProceduralEnv  # noqa: E402
from worldmodel.sim.recording import EpisodeRecorder  # noqa: E402
from worldmodel.sim.scenarios import ScenarioLike  # noqa: E402

FVD_MIN_FRAMES = 9  # the I3D's temporal receptive field


@dataclass
class EpisodePair:
    """One episode in both simulators: frames (T, V, H, W, 3), ego states (T, 6) t x y yaw speed steering."""

    name: str
    seed: int
    generated: np.ndarray
    truth: np.ndarray
    states: np.ndarray
    num_reference: int
    state_divergence_m: float
    episode_return: float


@dataclass
class FidelityResult:
    """What the fidelity command wrote and the per-second table."""

    folder: Path
    table: list[dict[str, Any]]
    summary: dict[str, Any]


def _states(env: Any) -> np.ndarray:
    return np.array([[s.time_s, s.x, s.y, s.yaw, s.speed, s.steering] for s in env.episode_states])


def drive_pair(wm_env: WorldModelEnv, truth_env: ProceduralEnv, policy: Callable, seed: int, scenario: ScenarioLike,
               folder: Path | None = None) -> EpisodePair:
    """Drive `policy` in the world model, replay its actions in the procedural world; optionally record both."""
    truth_obs, truth_info = truth_env.reset(seed=seed, options={"scenario": scenario})  # fails first if not procedural
    obs, info = wm_env.reset(seed=seed, options={"scenario": scenario})
    if hasattr(policy, "reset"):
        policy.reset(info)
    generated, truth, scenario_info = [info["frames"]], [truth_info["frames"]], info["scenario"]
    recorder = None
    if folder is not None:
        max_frames = wm_env.first_reference + wm_env.max_steps * wm_env.frames_per_step
        recorder = EpisodeRecorder(folder, list(info["cameras"]), info["fps"], max_frames, len(info["frames"]),
                                   with_truth=True)
        recorder.push(info["frames"], truth_info["frames"])
    total, done, failed = 0.0, False, True
    try:
        while not done:
            action = policy(obs)
            obs, reward, terminated, truncated, info = wm_env.step(action)
            _, _, truth_terminated, truth_truncated, truth_step = truth_env.step(action)
            generated.append(info["frames"])
            truth.append(truth_step["frames"])
            total += reward
            done = terminated or truncated or truth_terminated or truth_truncated
            if recorder is not None:
                recorder.push(info["frames"], truth_step["frames"])
                recorder.log_step(action, reward, terminated, truncated, info)
        failed = False
    finally:
        if recorder is not None:
            recorder.close(failed=failed, seed=seed, scenario=scenario_info)
    states, truth_states = _states(wm_env), _states(truth_env)
    divergence = float(np.max(np.linalg.norm(states[:, 1:3] - truth_states[:, 1:3], axis=1)))
    return EpisodePair(str(wm_env._start.name), seed, np.concatenate(generated), np.concatenate(truth), states,
                       wm_env.first_reference, divergence, total)


# ----------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------
def odometry_drift(frames: np.ndarray, states: np.ndarray, cameras: list[str], size: tuple[int, int], fps: float,
                   num_reference: int) -> dict[str, np.ndarray] | None:
    """Per generated frame: position error (m) of the path seen by front-camera odometry, speed and yaw-rate errors."""
    if "CAM_FRONT" not in cameras:
        return None
    view = cameras.index("CAM_FRONT")
    front = CAMERAS["CAM_FRONT"]
    clip = frames[num_reference - 1:, view]  # from the last reference frame on
    motion = estimate_ego_motion(clip, front.intrinsics(size), fps, camera_to_ego=front.camera_to_ego(),
                                 pixel_offset=0.5)
    seen = integrate(motion)  # (n, 3) relative to the last reference frame
    true = relative_pose(states[num_reference - 1, 1:4], states[num_reference - 1:, 1:4])
    true_speed = 0.5 * (states[num_reference - 1:-1, 4] + states[num_reference:, 4])
    true_yaw_rate = np.diff(np.unwrap(states[num_reference - 1:, 3])) * fps
    return {"position_m": np.linalg.norm(seen[1:, :2] - true[1:, :2], axis=1),
            "speed_mps": np.abs(motion.speed - true_speed), "yaw_rate": np.abs(motion.yaw_rate - true_yaw_rate)}


def _fvd_per_second(pairs: list[EpisodePair], bins: list[np.ndarray], mode: str, min_clips: int,
                    i3d_weights: str | None) -> tuple[list[float | None], str]:
    """FVD of generated vs true 1 s clips per second, or Nones and the reason it was not computed."""
    if mode == "false" or mode is False:
        return [None] * len(bins), "disabled (fidelity.fvd=false)"
    if len(pairs) < min_clips:
        return [None] * len(bins), (f"not computed: {len(pairs)} episodes, FVD needs at least {min_clips} clips per "
                                    f"second to mean anything (fidelity.fvd_min_clips)")
    if min(len(b) for b in bins) < FVD_MIN_FRAMES:
        return [None] * len(bins), f"not computed: one second holds fewer than {FVD_MIN_FRAMES} frames at this fps"
    import torch

    from worldmodel.eval.frechet import FVD
    from worldmodel.eval.weights import WeightsError

    try:
        metric = FVD(i3d_weights)
    except WeightsError as err:
        if mode == "true" or mode is True:
            raise
        return [None] * len(bins), f"not computed: {err}"
    out = []
    for frames_idx in tqdm(bins, desc="FVD per second", leave=False):
        metric.reset()
        for pair in pairs:
            for v in range(pair.truth.shape[1]):
                to_clip = lambda x: torch.from_numpy(np.ascontiguousarray(x[frames_idx, v])).permute(0, 3, 1, 2)[None]  # noqa: E731
                metric.update(to_clip(pair.truth), real=True)
                metric.update(to_clip(pair.generated), real=False)
        out.append(float(metric.compute()))
    return out, f"computed on {len(pairs)} episodes x views, 1 s clips"


def per_second_table(pairs: list[EpisodePair], cameras: list[str], size: tuple[int, int], fps: float,
                     fvd: str = "auto", fvd_min_clips: int = 16, i3d_weights: str | None = None
                     ) -> tuple[list[dict[str, Any]], str]:
    """Rows per second of closed-loop driving (second 1 = frames in (0, 1] s after the last reference frame)."""
    k = pairs[0].num_reference
    length = min(len(p.generated) for p in pairs) - k  # generated frames common to every episode
    seconds = math.ceil(length / fps - 1e-9)
    bins = [np.arange(k + int(round(j * fps)), k + min(int(round((j + 1) * fps)), length)) for j in range(seconds)]
    per_pair = []
    for p in pairs:
        last_ref = np.broadcast_to(p.truth[k - 1], p.truth[k:].shape)
        per_pair.append({
            "psnr": psnr(p.generated[k:], p.truth[k:]).mean(axis=1),
            "psnr_copy": psnr(last_ref, p.truth[k:]).mean(axis=1),
            "ssim": ssim(p.generated[k:], p.truth[k:]).mean(axis=1),
            "odo": odometry_drift(p.generated, p.states, cameras, size, fps, k),
            "odo_truth": odometry_drift(p.truth, p.states, cameras, size, fps, k)})
    fvds, fvd_note = _fvd_per_second(pairs, bins, str(fvd).lower(), fvd_min_clips, i3d_weights)
    rows = []
    for j, frames_idx in enumerate(bins):
        rel = frames_idx - k

        def mean(key: str, sub: str | None = None, last: bool = False) -> float | None:
            values = []
            for m in per_pair:
                series = m[key] if sub is None else (m[key] or {}).get(sub)
                if series is None:
                    continue
                picked = series[rel[-1:]] if last else series[rel]
                values.append(np.nanmean(picked) if np.isfinite(picked).any() else np.nan)
            finite = [v for v in values if np.isfinite(v)]
            return round(float(np.mean(finite)), 4) if finite else None

        rows.append({"second": j + 1, "frames": int(len(frames_idx)), "psnr": mean("psnr"),
                     "psnr_copy_last_frame": mean("psnr_copy"), "ssim": mean("ssim"),
                     "fvd": None if fvds[j] is None else round(fvds[j], 2),
                     "odometry_drift_m": mean("odo", "position_m", last=True),
                     "odometry_drift_m_true_frames": mean("odo_truth", "position_m", last=True),
                     "speed_error_mps": mean("odo", "speed_mps"), "yaw_rate_error": mean("odo", "yaw_rate")})
    return rows, fvd_note


# ----------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------
COLUMNS = [("second", "second"), ("psnr", "PSNR dB"), ("psnr_copy_last_frame", "copy-last PSNR dB"),
           ("ssim", "SSIM"), ("fvd", "FVD"), ("odometry_drift_m", "odometry drift m (generated)"),
           ("odometry_drift_m_true_frames", "odometry drift m (true frames)"),
           ("speed_error_mps", "speed error m/s"), ("yaw_rate_error", "yaw-rate error rad/s")]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The per-second table as GitHub markdown ('-' for null)."""
    lines = ["| " + " | ".join(label for _, label in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = ["-" if row[key] is None else (f"{row[key]:.3f}" if isinstance(row[key], float) else str(row[key]))
                 for key, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(path: Path, rows: list[dict[str, Any]], title: str) -> Path:
    """PNG: PSNR (with the copy baseline), SSIM and odometry drift against seconds of closed-loop driving."""
    t = [r["second"] for r in rows]
    series = lambda key: [np.nan if r[key] is None else r[key] for r in rows]  # noqa: E731
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), dpi=100)
    axes[0].plot(t, series("psnr"), "o-", label="world model")
    axes[0].plot(t, series("psnr_copy_last_frame"), "s--", color="0.5", label="copy last frame")
    axes[0].set_ylabel("PSNR (dB)")
    axes[0].legend(fontsize=7)
    axes[1].plot(t, series("ssim"), "o-")
    axes[1].set_ylabel("SSIM")
    axes[2].plot(t, series("odometry_drift_m"), "o-", label="generated frames")
    axes[2].plot(t, series("odometry_drift_m_true_frames"), "s--", color="0.5", label="true frames (floor)")
    axes[2].set_ylabel("odometry drift (m)")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("seconds of closed-loop driving")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)
    return path


def run_fidelity(wm_env: WorldModelEnv, policy: Callable, folder: str | Path, episodes: int, seed: int = 0,
                 scenario: ScenarioLike | None = None, fvd: str = "auto", fvd_min_clips: int = 16,
                 i3d_weights: str | None = None, record: bool = True, progress: bool = True,
                 description: dict[str, Any] | None = None) -> FidelityResult:
    """Episode i: scenario (or procedural world seed + i), noise seed seed + i; writes fidelity.json/.md/.png."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    truth_env = ProceduralEnv(wm_env.rig, horizon_s=wm_env.horizon_s, chunk_s=wm_env.chunk_s,
                              carry_frames=wm_env.carry_frames, first_reference=wm_env.first_reference,
                              action_mode=wm_env.action_mode, reward_fn=wm_env.reward_fn,
                              termination_fn=wm_env.termination_fn)
    pairs = []
    for i in tqdm(range(episodes), desc="fidelity episodes", disable=not progress):
        pairs.append(drive_pair(wm_env, truth_env, policy, seed + i, scenario if scenario is not None else seed + i,
                                folder / f"episode{i:03d}" if record else None))
    rows, fvd_note = per_second_table(pairs, wm_env.cameras, wm_env.rig.size, wm_env.fps, fvd, fvd_min_clips,
                                      i3d_weights)
    summary = {"episodes": [{"scenario": p.name, "seed": p.seed, "frames": int(len(p.generated)),
                             "return": round(p.episode_return, 3),
                             "commanded_state_divergence_m": p.state_divergence_m} for p in pairs],
               "fvd_note": fvd_note, "fps": wm_env.fps, "chunk_s": wm_env.chunk_s, "horizon_s": wm_env.horizon_s,
               "first_reference": wm_env.first_reference, "carry_frames": wm_env.carry_frames,
               "cameras": wm_env.cameras, "size": list(wm_env.rig.size), **(description or {})}
    atomic_write_json(folder / "fidelity.json", {"per_second": rows, **summary})
    title = (f"closed-loop fidelity: {episodes} episode(s), {wm_env.horizon_s:g} s, "
             f"{wm_env.chunk_s:g} s per step, {wm_env.fps:g} Hz")
    (folder / "fidelity.md").write_text(f"{title}\n\n{markdown_table(rows)}\nFVD: {fvd_note}\n")
    plot_curves(folder / "fidelity.png", rows, title)
    return FidelityResult(folder, rows, summary)
