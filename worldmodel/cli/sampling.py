"""The one line the rollout and evaluation commands print about how their videos were sampled."""
from __future__ import annotations


def sampling_line(warp_start: float | None, steps: int, cfg_scale: float, churn: float,
                  warp_condition: bool = False, evaluations: int | None = None) -> str:
    """'sampling: from ...; N-step schedule, CFG c, churn h', so a reader knows which sampler made the numbers.

    `evaluations`: the model evaluations per chunk (`FlowEulerSampler.evaluations`); said when a warp start
    makes it fewer than the schedule's steps, since that, not the schedule, is how much each chunk is denoised."""
    moved = "each chunk's last frame moved along the commanded path"
    if warp_start is None:
        begin = "from pure noise"
        if warp_condition:
            begin += f"; the model takes {moved} as an input (warp-conditioned)"
    else:
        begin = f"from tau {warp_start:g}: {moved} (warp start)"
        if warp_condition:
            begin += ", which the model also takes as an input (warp-conditioned)"
    schedule = f"{steps}-step schedule"
    if evaluations is not None and evaluations != steps:
        schedule += f" ({evaluations} model evaluation{'s' if evaluations != 1 else ''} per chunk below the start)"
    return f"sampling: {begin}; {schedule}, CFG {cfg_scale:g}, churn {churn:g}"
