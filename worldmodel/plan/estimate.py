"""From one fake step to a plan: memory per GPU under a strategy, time at a stated MFU, and whether it fits."""
from __future__ import annotations

from dataclasses import dataclass

from worldmodel.plan.fake_step import Memory, SampleCount, StepCount
from worldmodel.plan.gpus import GPU

GIB = 2**30
# Share of a GPU's memory a plan may fill: the caching allocator's fragmentation, the CUDA context and the
# kernels' workspaces take the rest (typically 5-10 % of an 80 GB GPU).
USABLE_SHARE = 0.9
STRATEGIES = ("single", "ddp", "fsdp")


@dataclass
class RankMemory:
    """Peak bytes on one GPU of a strategy over `ranks` GPUs, by kind, and how it was derived."""

    strategy: str
    ranks: int
    memory: Memory
    how: str

    @property
    def total(self) -> int:
        return self.memory.total


def per_rank_memory(step: StepCount, strategy: str, ranks: int) -> RankMemory:
    """The fake step's peak (one GPU, the whole model) spread as `strategy` spreads it over `ranks` GPUs.

    single: as measured. ddp: every rank holds everything, plus DDP's gradient buckets (a copy of the trainable
    gradients that the all-reduce runs on). fsdp (FULL_SHARD): weights (the EMA copy too), gradients and optimiser
    state are divided by the ranks; each rank also holds the full weights of the unit that runs and of the next one
    (prefetch) in the compute dtype, and the full gradients of one unit before its reduce-scatter. Activations
    are a rank's own batch, as measured. On `small` over 8 ranks this split is within 1 % of torch's FSDP2 memory
    tracker run on a fake process group (tests/plan/test_plan.py); the planner keeps the split because that
    tracker cannot follow the EMA copy, a module the step never calls.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"plan.strategy must be one of {STRATEGIES}, got {strategy!r}")
    m = step.peak
    if strategy == "single" or ranks == 1 and strategy != "ddp":
        return RankMemory("single", 1, m, "measured on fake tensors")
    if strategy == "ddp":
        buckets = step.trainable_bytes if m.gradients else 0
        return RankMemory("ddp", ranks, Memory(m.weights, m.gradients + buckets, m.optimizer, m.activations),
                          "measured, plus DDP's gradient buckets (one copy of the trainable gradients)")
    compute_share = 0.5 if step.precision.startswith(("bf16", "16")) else 1.0
    gathered = int(2 * step.largest_unit_bytes * compute_share)
    unit_gradients = step.largest_unit_bytes if m.gradients else 0
    memory = Memory(weights=m.weights // ranks + gathered, gradients=m.gradients // ranks + unit_gradients,
                    optimizer=m.optimizer // ranks, activations=m.activations)
    return RankMemory("fsdp", ranks, memory, "measured, weights / gradients / optimiser state sharded "
                                             f"{ranks} ways, plus two gathered blocks and one block's gradients")


@dataclass
class Timing:
    step_s: float
    run_h: float | None


def step_time(flops: float, gpu: GPU, mfu: float, steps: int | None = None) -> Timing:
    """Seconds for `flops` on one GPU at `mfu` of its bf16 peak; with `steps`, hours for that many (data-parallel
    ranks each run one local step per global step, so the time does not shrink with more ranks)."""
    seconds = flops / (_checked(mfu) * gpu.bf16_flops)
    return Timing(seconds, None if steps is None else seconds * steps / 3600.0)


def fits(total_bytes: int, gpu: GPU) -> bool:
    """Whether a peak of `total_bytes` leaves the GPU the headroom the allocator and context need."""
    return total_bytes <= USABLE_SHARE * gpu.memory_gib * GIB


def sample_time(sample: SampleCount, gpu: GPU, mfu: float) -> float:
    return sample.flops / (_checked(mfu) * gpu.bf16_flops)


def _checked(mfu: float) -> float:
    if not 0.0 < mfu <= 1.0:
        raise ValueError(f"plan.mfu must be in (0, 1] (e.g. 0.4 for 40 %), got {mfu}")
    return mfu
