"""An evaluation's pictures and page: per-frame and per-horizon curves (curves.png) and report.html."""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from worldmodel.eval.unreadable import skipped_line  # noqa: E402
from worldmodel.files import atomic_path, atomic_write_text  # noqa: E402
from worldmodel.viz.report import TEMPLATE_DIR, _table, fill_template  # noqa: E402

EVAL_TEMPLATE = TEMPLATE_DIR / "eval_report.html"
SOURCE_LABELS = {"model": "model", "copy_last_frame": "copy last frame", "ground_truth": "ground truth video"}


def plot_curves(path: Path, metrics: Mapping[str, Any], fps: float) -> Path | None:
    """PSNR / SSIM per predicted frame and FID / FVD per horizon segment, model against baselines."""
    panels = [m for m in ("psnr", "ssim") if f"{m}_curves" in metrics]
    panels += [m for m in ("fid", "fvd") if len(metrics.get(f"{m}_per_segment", {})) > 1]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, name in zip(axes[0], panels):
        if name in ("psnr", "ssim"):
            curves = metrics[f"{name}_curves"]
            for key, values in curves.items():
                if key.endswith("_per_frame"):
                    source = key[: -len("_per_frame")]
                    times = [(i + 1) / fps for i in range(len(values))]
                    ax.plot(times, values, label=SOURCE_LABELS.get(source, source))
            ax.set_xlabel("seconds after the last reference frame")
            ax.set_ylabel("PSNR (dB)" if name == "psnr" else "SSIM")
        else:
            rows = {k: v for k, v in metrics[f"{name}_per_segment"].items() if k != "all"}
            labels = list(rows)
            for source in [s for s in next(iter(rows.values())) if s != "samples"]:
                ax.plot(labels, [rows[label][source] for label in labels], marker="o",
                        label=SOURCE_LABELS.get(source, source))
            ax.set_xlabel("horizon segment")
            ax.set_ylabel(name.upper())
        ax.set_title(name.upper())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _headline(metrics: Mapping[str, Any], baselines: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for name in ("fid", "fvd", "psnr", "ssim"):
        if name not in metrics:
            continue
        row: dict[str, Any] = {"metric": name.upper(), "model": metrics[name]}
        for source in baselines:
            row[SOURCE_LABELS.get(source, source)] = metrics.get(f"{name}_{source}")
        if f"{name}_real_vs_real" in metrics:
            row["real vs real (half / half)"] = metrics[f"{name}_real_vs_real"]
        rows.append(row)
    return rows


def _segments(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in ("fid", "fvd"):
        for label, values in metrics.get(f"{name}_per_segment", {}).items():
            rows.append({"metric": name.upper(), "segment": label, **values})
    return rows


def _relative_video(path: Path, folder: Path) -> str:
    src = html.escape(path.resolve().relative_to(folder.resolve()).as_posix(), quote=True)
    return (f'<figure><figcaption>{html.escape(path.stem)}</figcaption>'
            f'<video class="medium" src="{src}" controls loop muted autoplay playsinline></video></figure>')


def write_eval_report(folder: Path, metrics: Mapping[str, Any], videos: Sequence[Path],
                      template: Path = EVAL_TEMPLATE) -> Path:
    """Write curves.png and report.html into `folder`; returns the page's path."""
    protocol = metrics["protocol"]
    resolved = protocol["resolved"]
    curves = plot_curves(folder / "curves.png", metrics, float(resolved["fps"]))
    segment_rows = _segments(metrics)
    actions = [{"video": SOURCE_LABELS.get(s, s), **values} for s, values in metrics.get("action_following", {}).items()]
    details = {k: v for k, v in protocol.items() if k not in ("resolved", "extra")}
    details.update({k: v for k, v in resolved.items() if k not in ("clip_indices", "skipped_clips")})
    details["clip_indices"] = ", ".join(str(i) for i in resolved["clip_indices"][:50]) + (
        " ..." if len(resolved["clip_indices"]) > 50 else "")
    skipped = resolved.get("skipped_clips") or []
    details["skipped_clips"] = "; ".join(f"clip {s['clip']}: {s['file']}: {s['reason']}" for s in skipped) or "none"
    page = fill_template(
        template,
        title=html.escape(f"Evaluation: {protocol['name']}"),
        subtitle=html.escape(f"{resolved['videos']} videos of {resolved['frames_per_video']} frames at "
                             f"{resolved['fps']:g} Hz ({resolved['reference_frames']} reference, not scored); "
                             f"checkpoint {resolved['checkpoint']} step {resolved['checkpoint_step']}. "
                             f"{protocol.get('description', '')}" + (f" {skipped_line(resolved)}."
                                                                     if skipped else "")),
        headline=_table(_headline(metrics, protocol["baselines"])),
        segments=_table(segment_rows) if segment_rows else '<p class="none">FID / FVD not scored</p>',
        curves=(f'<img id="curves-plot" src="{curves.name}" alt="metrics per frame and per horizon">' if curves
                else '<p class="none">no curves</p>'),
        actions=_table(actions) if actions else '<p class="none">not measured by this protocol</p>',
        videos="\n".join(_relative_video(p, folder) for p in videos) or '<p class="none">none written</p>',
        protocol=_table([{"key": k, "value": v} for k, v in details.items()]),
    )
    return atomic_write_text(folder / "report.html", page)
