"""The one line the rollout and evaluation commands print about how their videos were sampled."""
from __future__ import annotations


def sampling_line(warp_start: float | None, steps: int, cfg_scale: float, churn: float,
                  warp_condition: bool = False) -> str:
    """'sampling: from ...; N-step schedule, CFG c, churn h', so a reader knows which sampler made the numbers."""
    moved = "each chunk's last frame moved along the commanded path"
    if warp_start is None:
        begin = "from pure noise"
        if warp_condition:
            begin += f"; the model takes {moved} as an input (warp-conditioned)"
    else:
        begin = f"from tau {warp_start:g}: {moved} (warp start)"
        if warp_condition:
            begin += ", which the model also takes as an input (warp-conditioned)"
    return f"sampling: {begin}; {steps}-step schedule, CFG {cfg_scale:g}, churn {churn:g}"
