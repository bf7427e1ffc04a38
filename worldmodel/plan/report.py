"""The plan as the table `worldmodel-plan` prints."""
from __future__ import annotations

from worldmodel.plan.estimate import GIB, USABLE_SHARE
from worldmodel.plan.fake_step import ATTENTION_KERNEL, SampleCount
from worldmodel.plan.run import Plan, SamplingPlan


def _gib(nbytes: float) -> str:
    return f"{nbytes / GIB:.1f} GiB" if nbytes >= 0.1 * GIB else f"{nbytes / 2**20:.1f} MiB"


def _flop(flops: float) -> str:
    return f"{flops / 1e12:,.1f} TFLOP" if flops >= 1e11 else f"{flops / 1e9:,.2f} GFLOP"


def _seconds(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1e3:.2f} ms"


def _count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n:,}"


def format_plan(p: Plan, title: str = "") -> str:
    s = p.step
    b, t, v, h, w = s.clip
    trainable = sum(c[0] for c in s.parameters.values())
    frozen = sum(c[1] for c in s.parameters.values())
    groups = ", ".join(f"{name} {_count(c[0] + c[1])}" + ("" if c[1] == 0 else " frozen" if c[0] == 0 else "")
                       for name, c in sorted(s.parameters.items(), key=lambda kv: -sum(kv[1])))
    m = p.memory.memory
    lines = [
        f"worldmodel-plan{': ' + title if title else ''}",
        f"  clip            batch {b} per GPU x {t} frames x {v} view{'s' if v > 1 else ''} x {h}x{w}, "
        f"{s.precision}, gradient checkpointing {'on' if s.gradient_checkpointing else 'off'}, codec {s.codec}",
        f"  parameters      {_count(trainable)} trainable, {_count(frozen)} frozen ({groups})",
        f"  tokens / step   {s.tokens:,} over {s.passes} forward pass{'es' if s.passes != 1 else ''} "
        f"({s.tokens_per_pass:,} per full-grid pass)",
        f"  FLOPs / step    {_flop(s.flops)} (forward + backward, recomputation not counted)",
        f"  memory / GPU    {p.memory.strategy}{'' if p.memory.ranks == 1 else f' x {p.memory.ranks}'}: "
        f"weights {_gib(m.weights)}, gradients {_gib(m.gradients)}, optimiser {_gib(m.optimizer)}, "
        f"activations {_gib(m.activations)}; peak {_gib(p.memory.total)} ({p.memory.how})",
        f"  time / step     {_seconds(p.timing.step_s)} on a {p.gpu.name} at {p.mfu:.0%} MFU "
        f"({p.gpu.bf16_flops / 1e12:.0f} TFLOP/s bf16 peak)"
        + ("" if p.timing.run_h is None else f"; {p.timing.run_h:,.1f} h for the run's steps"),
        f"  fits            {'yes' if p.fits else 'NO'}: {_gib(p.memory.total)} of the {p.gpu.name}'s "
        f"{p.gpu.memory_gib:.0f} GiB ({USABLE_SHARE:.0%} usable)",
    ]
    for knob, total in p.knobs:
        lines.append(f"    try           {knob}" + ("" if total is None else f": peak {_gib(total)}"))
    if p.sample is not None:
        lines += _sampling_lines(p.sample, p.sample_s, p.sample_bf16_weights, p.sample_mfu)
    lines.append(f"  attention       counted as {ATTENTION_KERNEL}")
    lines.extend(f"  note            {note}" for note in s.notes)
    lines.append("  not counted     communication time, data loading, the allocator's fragmentation beyond the "
                 "headroom above")
    return "\n".join(lines)


def _sampling_lines(c: SampleCount, seconds: float, lighter: SampleCount | None, mfu: float) -> list[str]:
    clips = "one" if c.clips == 1 else f"{c.clips} x"
    lines = [f"  sampling        {clips} {c.frames}-frame clip{'s' if c.clips > 1 else ''}, {c.steps} steps"
             f"{' with CFG' if c.cfg else ''}: {_flop(c.flops)}, {_seconds(seconds)} at {mfu:.0%} MFU, "
             f"peak {_gib(c.peak.total)} "
             f"(weights {_gib(c.peak.weights)}; {c.precision})"]
    if lighter is not None:
        lines.append(f"    try           worldmodel-rollout precision=bf16-true (bfloat16 weights): peak "
                     f"{_gib(lighter.peak.total)}")
    return lines


def format_sampling_plan(p: SamplingPlan) -> str:
    """A checkpoint's sampling plan as `worldmodel-plan checkpoint=PATH` prints it."""
    return "\n".join([
        f"worldmodel-plan: sampling {p.source}",
        *_sampling_lines(p.sample, p.sample_s, p.bf16_weights, p.mfu),
        f"  time            on a {p.gpu.name} at {p.mfu:.0%} MFU ({p.gpu.bf16_flops / 1e12:.0f} TFLOP/s bf16 peak)",
        f"  fits            {'yes' if p.fits else 'NO'}: {_gib(p.sample.peak.total)} of the {p.gpu.name}'s "
        f"{p.gpu.memory_gib:.0f} GiB ({USABLE_SHARE:.0%} usable)",
        f"  attention       counted as {ATTENTION_KERNEL}",
        "  not counted     reading the checkpoint, encoding the reference frames, writing videos",
    ])
