"""The one line the rollout and evaluation commands print about how their videos were sampled."""
from __future__ import annotations


def sampling_line(warp_start: float | None, steps: int, cfg_scale: float, churn: float) -> str:
    """'sampling: from ...; N-step schedule, CFG c, churn h', so a reader knows which sampler made the numbers."""
    begin = ("from pure noise" if warp_start is None else
             f"from tau {warp_start:g}: each chunk's last frame moved along the commanded path (warp start)")
    return f"sampling: {begin}; {steps}-step schedule, CFG {cfg_scale:g}, churn {churn:g}"
