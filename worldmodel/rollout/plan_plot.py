"""The action plan of a rollout as a picture: speed, heading and steering over time, one band per chunk."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never open a window (CI and servers have no display)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from worldmodel.data.actions import ACTION_FIELDS, Command, field_slice  # noqa: E402
from worldmodel.files import atomic_path  # noqa: E402
from worldmodel.rollout.engine import ChunkActions  # noqa: E402
from worldmodel.rollout.jobs import EgoTrack  # noqa: E402



def chunk_summary(plan: Sequence[ChunkActions]) -> list[dict[str, object]]:
    """Per chunk: command name and the final waypoint / speed / steering the model is asked for (None if invalid)."""
    out = []
    for values, valid in plan:
        v, ok = values[0].float().numpy(), valid[0].numpy()
        flag = dict(zip(ACTION_FIELDS, ok.tolist()))
        traj = v[field_slice("trajectory")].reshape(4, 2)
        out.append({
            "command": Command(int(round(v[0]))).name.lower() if flag["command"] else None,
            "final_waypoint": np.round(traj[-1].astype(np.float64), 2).tolist() if flag["trajectory"] else None,
            "final_speed": round(float(v[field_slice("speed")][3]), 2) if flag["speed"] else None,
            "final_angle": round(float(v[field_slice("angle")][3]), 3) if flag["angle"] else None,
        })
    return out


def plot_plan(path: str | Path, track: EgoTrack | None, chunk_starts_s: Sequence[float], horizon_s: float,
              plan: Sequence[ChunkActions], title: str = "") -> Path:
    """Write a PNG: speed (m/s) and heading / steering-wheel angle (deg) against time, chunks shaded and labelled."""
    summary = chunk_summary(plan)
    fig, (ax_speed, ax_turn) = plt.subplots(2, 1, figsize=(8, 4.6), sharex=True, dpi=100)
    ends = [*chunk_starts_s[1:], horizon_s]
    previous = ""
    for i, (start, end) in enumerate(zip(chunk_starts_s, ends)):
        for ax in (ax_speed, ax_turn):
            if i % 2:
                ax.axvspan(start, end, color="0.93", lw=0)
            ax.axvline(start, color="0.7", lw=0.5)
        # Label where the command changes: one label per chunk is unreadable on long rollouts.
        label = summary[i]["command"] or "no action"
        if label != previous:
            ax_speed.text(start + 0.05, 1.02, label, transform=ax_speed.get_xaxis_transform(), va="bottom",
                          fontsize=7, rotation=30)
            ax_speed.axvline(start, color="tab:red", lw=0.8, ls="--")
        previous = label
    if track is not None:
        keep = track.timestamps <= horizon_s + 1e-6
        t = track.timestamps[keep]
        ax_speed.plot(t, track.speeds[keep], color="tab:blue", label="speed")
        yaw = np.degrees(np.unwrap(track.poses[keep, 2]) - track.poses[0, 2])
        ax_turn.plot(t, yaw, color="tab:green", label="heading change (deg, + left)")
        if track.steering is not None:
            ax_turn.plot(t, np.degrees(track.steering[keep]) / 10.0, color="tab:orange",
                         label="steering wheel / 10 (deg, + left)")
        ax_turn.legend(loc="best", fontsize=7)
    else:
        ax_speed.text(0.5, 0.5, "no ego motion: unconditional generation", transform=ax_speed.transAxes,
                      ha="center")
    ax_speed.set_ylabel("speed (m/s)")
    ax_turn.set_ylabel("degrees")
    ax_turn.set_xlabel("time (s)")
    ax_turn.axhline(0.0, color="0.5", lw=0.6)
    ax_turn.set_xlim(0.0, horizon_s)
    fig.suptitle(title, fontsize=9, y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    with atomic_path(path) as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)
    return Path(path)
