"""`plan(cfg)`: what a composed training run will cost on a named GPU, measured on fake tensors."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

from worldmodel.plan.estimate import RankMemory, Timing, fits, per_rank_memory, sample_time, step_time
from worldmodel.plan.fake_step import SampleCount, StepCount, measure_sampling, measure_training_step
from worldmodel.plan.gpus import GPU, gpu_named


@dataclass
class Plan:
    """A run's plan: the measured step and sampling chunk, and what they mean on `gpu` over `ranks` GPUs."""

    gpu: GPU
    mfu: float
    ranks: int
    strategy: str
    step: StepCount
    memory: RankMemory
    timing: Timing
    fits: bool
    sample: SampleCount | None = None
    sample_s: float | None = None
    sample_mfu: float = 0.0
    # Sampling with bfloat16 weights, planned where the sampling peak does not fit with float32 ones.
    sample_bf16_weights: SampleCount | None = None
    # What to change when it does not fit, each with the per-GPU peak it would give where it was measured.
    knobs: list[tuple[str, float | None]] = field(default_factory=list)


def strategy_of(cfg: DictConfig, requested: str | None) -> str:
    """single, ddp or fsdp: as plan.strategy says, else as the run's trainer does."""
    if requested:
        return str(requested)
    target = str(OmegaConf.select(cfg, "trainer.strategy._target_", default="") or "")
    return "fsdp" if "fsdp" in target.lower() else "ddp" if "DDP" in target else "single"


def _count(settings: DictConfig, key: str) -> int:
    value = int(settings[key])
    if value < 1:
        raise ValueError(f"plan.{key} must be >= 1, got {value}")
    return value


def plan(cfg: DictConfig) -> Plan:
    """Measure the run of `cfg` (a composed `train` config with a `plan` section) and judge it."""
    settings = cfg.plan
    gpu = gpu_named(str(settings.gpu))
    ranks = _count(settings, "gpus")
    strategy = strategy_of(cfg, settings.get("strategy"))
    step = measure_training_step(cfg)
    memory = per_rank_memory(step, strategy, ranks)
    steps = settings.get("steps")
    result = Plan(gpu=gpu, mfu=float(settings.mfu), ranks=ranks, strategy=strategy, step=step, memory=memory,
                  timing=step_time(step.flops, gpu, float(settings.mfu), None if steps is None else int(steps)),
                  fits=fits(memory.total, gpu))
    if settings.get("sample", True):
        result.sample, result.sample_bf16_weights = _sampling(cfg, settings, gpu)
        result.sample_mfu = float(settings.sample_mfu)
        result.sample_s = sample_time(result.sample, gpu, result.sample_mfu)
    if not result.fits:
        result.knobs = _knobs(cfg, step, strategy, ranks)
    return result


def _knobs(cfg: DictConfig, step: StepCount, strategy: str, ranks: int) -> list[tuple[str, float | None]]:
    """Changes that lower the peak, in the order to try them, with the peak they give where it is known."""
    knobs: list[tuple[str, float | None]] = []
    if not step.gradient_checkpointing:
        checkpointed = copy.deepcopy(cfg)
        OmegaConf.update(checkpointed, "gradient_checkpointing", True)
        measured = measure_training_step(checkpointed)
        knobs.append(("gradient_checkpointing=true", per_rank_memory(measured, strategy, ranks).total))
    if strategy != "fsdp" and ranks > 1:
        knobs.append((f"trainer=fsdp (over the {ranks} GPUs)", per_rank_memory(step, "fsdp", ranks).total))
    if step.ema_bytes:
        # The EMA copy is float32 weights the step never reads: sharded like the rest under FSDP.
        share = step.ema_bytes // ranks if strategy == "fsdp" else step.ema_bytes
        knobs.append(("ema.enabled=false (no EMA copy; export the live weights)",
                      per_rank_memory(step, strategy, ranks).total - share))
    b = step.clip[0]
    if b > 1:
        knobs.append((f"data.batch_size={max(1, b // 2)}", None))
    knobs.append((f"data.clip.num_frames={max(1, step.clip[1] // 2)}", None))
    return knobs


@dataclass
class SamplingPlan:
    """The plan of sampling a trained model (`worldmodel-plan checkpoint=PATH`): one chunk of `clips` clips."""

    gpu: GPU
    mfu: float
    source: str
    sample: SampleCount
    sample_s: float
    fits: bool
    # Sampling with bfloat16 weights, planned where the peak does not fit with float32 ones.
    bf16_weights: SampleCount | None = None


def sampling_config(run_config: dict, settings: DictConfig) -> DictConfig:
    """What `measure_sampling` reads, from a checkpoint's stored run config: its network, codec and sampler (the
    plan's `num_steps` / `cfg_scale` overriding the sampler's, as worldmodel-rollout's do) and its chunk shape."""
    from worldmodel.rollout.jobs import ModelRig

    rig = ModelRig.from_run_config(run_config)
    sampler = dict(run_config["sampler"])
    for key in ("num_steps", "cfg_scale"):
        if settings.get(key) is not None:
            sampler[key] = settings[key]
    return OmegaConf.create({
        "model": run_config["model"], "codec": run_config["codec"], "sampler": sampler,
        "data": {"clip": {"num_frames": rig.chunk_frames, "size": list(rig.size)}, "batch_size": 1, "train": {}},
    })


def plan_sampling(cfg: DictConfig) -> SamplingPlan:
    """Measure sampling the model of `cfg.checkpoint` (its config only: no weights are read) and judge it."""
    from worldmodel.checkpoint import stored_run_config

    settings = cfg.plan
    gpu = gpu_named(str(settings.gpu))
    sample, lighter = _sampling(sampling_config(stored_run_config(cfg.checkpoint), settings), settings, gpu)
    return SamplingPlan(gpu=gpu, mfu=float(settings.sample_mfu), source=str(cfg.checkpoint), sample=sample,
                        sample_s=sample_time(sample, gpu, float(settings.sample_mfu)),
                        fits=fits(sample.peak.total, gpu), bf16_weights=lighter)


def _sampling(cfg: DictConfig, settings: DictConfig, gpu: GPU) -> tuple[SampleCount, SampleCount | None]:
    """Sampling at the plan's precision and clips, and with bfloat16 weights too where that peak does not fit."""
    precision, clips = str(settings.sample_precision), _count(settings, "sample_clips")
    sample = measure_sampling(cfg, precision, clips)
    lighter = None
    if precision != "bf16-true" and not fits(sample.peak.total, gpu):
        lighter = measure_sampling(cfg, "bf16-true", clips)
    return sample, lighter
