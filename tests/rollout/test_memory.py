"""Peak memory of a CPU rollout stays flat when the horizon doubles (frames and latents are streamed)."""
from __future__ import annotations

from pathlib import Path

from benchmarks.bench_rollout_memory import measure


def test_peak_rss_is_flat_when_the_horizon_doubles(tiny_export: Path) -> None:
    short, long = measure(tiny_export, 5.0), measure(tiny_export, 10.0)  # the benchmark runs 10 s vs 20 s
    assert (short["frames"], long["frames"]) == (50, 100)
    assert long["peak_rss_mb"] / short["peak_rss_mb"] < 1.2, (short, long)
