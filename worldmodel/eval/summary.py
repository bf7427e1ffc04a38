"""From an accumulator's statistics to the numbers of metrics.json: headline values, curves, baselines, floor."""
from __future__ import annotations

from typing import Any

import numpy as np

from worldmodel.eval.accumulate import HALF_A, HALF_B, REAL, EvalAccumulator
from worldmodel.eval.gaussian import frechet


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def _frechet_table(table: dict, segments: list[str], sources: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for label in segments:
        real = table[f"{label}|{REAL}"]
        out[label] = {s: _round(frechet(real, table[f"{label}|{s}"])) for s in sources}
        out[label]["samples"] = real.count
    return out


def _curves(videos: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    rows = [v[metric] for v in videos if metric in v]
    if not rows:
        return {}
    out: dict[str, Any] = {}
    for source in rows[0]:
        length = min(len(r[source]) for r in rows)
        curve = np.array([r[source][:length] for r in rows], dtype=np.float64)
        out[source] = _round(curve.mean())
        out[f"{source}_per_frame"] = curve.mean(axis=0).round(4).tolist()
    return out


def _action_means(videos: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    rows = [v["action_following"] for v in videos if v.get("action_following")]
    out: dict[str, dict[str, float | None]] = {}
    for source in (rows[0] if rows else {}):
        keys = rows[0][source].keys()
        out[source] = {}
        for key in keys:
            values = np.array([r[source][key] for r in rows], dtype=np.float64)
            if key == "heading_error_rad":
                values = np.abs(values)  # signed per video; its mean would cancel left against right
            finite = values[np.isfinite(values)]
            out[source][key] = _round(finite.mean()) if finite.size else None
        yaw_est = np.array([r[source]["yaw_rate_estimated"] for r in rows], dtype=np.float64)
        yaw_cmd = np.array([r[source]["yaw_rate_commanded"] for r in rows], dtype=np.float64)
        ok = np.isfinite(yaw_est) & np.isfinite(yaw_cmd)
        # Correlation says whether the video turns when told to, whatever the estimator's scale error.
        out[source]["yaw_rate_correlation"] = (_round(np.corrcoef(yaw_est[ok], yaw_cmd[ok])[0, 1])
                                               if ok.sum() >= 3 and yaw_est[ok].std() > 0 and yaw_cmd[ok].std() > 0
                                               else None)
        out[source]["videos_scored"] = int(ok.sum())
    return out


def summarize(acc: EvalAccumulator) -> dict[str, Any]:
    """metrics.json's numbers: FID / FVD per segment for the model and baselines, the real-vs-real floor,
    PSNR / SSIM means and per-frame curves, action following means. Headline keys sit at the top level."""
    segments = [label for label, _, _ in acc.segments]
    sources = ["model", *acc.baselines]
    out: dict[str, Any] = {"videos": len(acc.done)}
    for name, table in (("fid", acc.fid), ("fvd", acc.fvd)):
        if not table:
            continue
        per_segment = _frechet_table(table, segments, sources)
        out[name] = per_segment["all"]["model"]
        for source in acc.baselines:
            out[f"{name}_{source}"] = per_segment["all"][source]
        out[f"{name}_per_segment"] = per_segment
        if acc.real_floor:
            a, b = table[f"all|{HALF_A}"], table[f"all|{HALF_B}"]
            out[f"{name}_real_vs_real"] = _round(frechet(a, b))
            out[f"{name}_real_vs_real_samples"] = [a.count, b.count]
    for metric in ("psnr", "ssim"):
        curves = _curves(acc.videos, metric)
        if curves:
            out[metric] = curves["model"]
            for source in acc.baselines:
                out[f"{metric}_{source}"] = curves.get(source)
            out[f"{metric}_curves"] = curves
    actions = _action_means(acc.videos)
    if actions:
        out["action_following"] = actions
    return out
