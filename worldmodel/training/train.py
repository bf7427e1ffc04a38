"""`train(cfg)`: build data, codec, model, objective and trainer from a composed config, then fit."""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from worldmodel.training.checkpoint_io import newest_good_checkpoint
from worldmodel.training.datamodule import check_dataset_roots
from worldmodel.training.faults import FaultPolicy, oom_advice
from worldmodel.training.resume import check_resume_matches, resolve_ckpt_path
from worldmodel.training.run_dir import check_run_dir, check_writable, clear_previous_run, write_failure
from worldmodel.training.module import WorldModelModule
from worldmodel.training.preemption import PreemptionCheckpoint
from worldmodel.diffusion.extension import ObjectiveExtension
from worldmodel.training.hooks import StepHook
from worldmodel.training.trainable import freeze_idle_groups, select_trainable

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where a finished run put its outputs, and its last logged metrics."""

    run_dir: Path
    export_dir: Path
    last_checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    # The global step at which a preemption signal or Ctrl-C stopped the run (None: it ran to its end), and
    # the signal's name (SIGTERM, SIGUSR1, SIGINT).
    preempted_at_step: int | None = None
    stopped_by: str | None = None
    # The last optimiser step, and the step at which trainer.max_time stopped the run (None: it did not).
    global_step: int = 0
    time_limited_at_step: int | None = None


def _check_codec_fits_model(codec: Any, model: Any) -> None:
    channels = model.config.in_channels
    if codec.latent_channels != channels:
        raise ValueError(
            f"codec gives {codec.latent_channels} latent channels but the model expects {channels}: "
            f"pick a matching pair (e.g. codec=pixel with model=tiny, codec=sd3_vae with model=sd3_medium) "
            f"or set model.in_channels={codec.latent_channels} model.out_channels={codec.latent_channels}")


def strategy_checkpoints(trainer: DictConfig) -> bool:
    """Whether the trainer's strategy applies activation checkpointing itself (trainer=fsdp follows
    gradient_checkpointing): the model's own checkpointing then stays off, so no block is recomputed twice."""
    strategy = trainer.get("strategy")
    return isinstance(strategy, DictConfig) and bool(strategy.get("activation_checkpointing", False))


def build_extensions(cfg: DictConfig) -> list[Any]:
    """The config's experimental extensions (`extension=<name>`, worldmodel/experimental/), in selection order."""
    built = []
    for name, node in (cfg.get("extension") or {}).items():
        extension = instantiate(node, _convert_="all")
        if not isinstance(extension, (ObjectiveExtension, StepHook)):
            raise TypeError(f"extension.{name} builds a {type(extension).__name__}, which is neither an "
                            f"ObjectiveExtension (worldmodel/diffusion/extension.py) nor a StepHook "
                            f"(worldmodel/training/hooks.py)")
        built.append(extension)
    return built


def build_objective(cfg: DictConfig, extensions: list[Any] | None = None) -> Any:
    """The run's objective with the config's objective extensions plugged in."""
    extensions = build_extensions(cfg) if extensions is None else extensions
    return instantiate(cfg.objective, _convert_="all",
                       extensions=[e for e in extensions if isinstance(e, ObjectiveExtension)])


def build_module(cfg: DictConfig, run_config: dict[str, Any]) -> WorldModelModule:
    """The LightningModule of a composed config (model, codec, objective, sampler, optimiser, EMA, extensions)."""
    model = instantiate(cfg.model, _convert_="all")
    extensions = build_extensions(cfg)
    objective = build_objective(cfg, extensions)
    select_trainable(model, None if cfg.trainable is None else list(cfg.trainable))
    if idle := freeze_idle_groups(model, objective):
        log.info("frozen, the objective never runs them: %s", ", ".join(idle))
    if cfg.gradient_checkpointing and not strategy_checkpoints(cfg.trainer):
        model.enable_gradient_checkpointing()
    codec = instantiate(cfg.codec, _convert_="all")
    _check_codec_fits_model(codec, model)
    return WorldModelModule(
        model=model, codec=codec, objective=objective,
        sampler=instantiate(cfg.sampler, _convert_="all"), **OmegaConf.to_container(cfg.optim),
        ema_decay=cfg.ema.decay if cfg.ema.enabled else None, run_config=run_config,
        faults=FaultPolicy(**OmegaConf.to_container(cfg.faults)),
        step_hooks=[e for e in extensions if isinstance(e, StepHook)])


def train(cfg: DictConfig) -> TrainResult:
    """Fit a world model as `cfg` says; returns where the checkpoints and the export went.

    Everything a user can get wrong about the run folder and the checkpoint to resume is checked before any
    data or model is built: a used run_dir, a ckpt_path that is missing, an export folder or another model.
    """
    run_dir = Path(cfg.run_dir).expanduser().resolve()
    # Resolve run_dir once: it may hold ${now:...}, which would differ at every later access.
    OmegaConf.update(cfg, "run_dir", str(run_dir), force_add=False)
    overwrite = bool(cfg.get("overwrite", False))
    check_dataset_roots(cfg.data)
    check_run_dir(run_dir, resuming=cfg.ckpt_path is not None, overwrite=overwrite)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, run_dir)
    check_writable(run_dir)
    run_config = OmegaConf.to_container(cfg, resolve=True)
    if ckpt_path is not None:
        check_resume_matches(ckpt_path, run_config)
    elif overwrite and (removed := clear_previous_run(run_dir)):
        log.warning("overwrite=true: removed the earlier run's %s in %s", ", ".join(removed), run_dir)
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(
        cfg.data, reference_choices=list(cfg.reference_frames.choices),
        reference_weights=list(cfg.reference_frames.weights), seed=cfg.seed, _convert_="all")
    module = build_module(cfg, run_config)
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values() if c is not None]
    loggers = [instantiate(c) for c in (cfg.logger or {}).values() if c is not None] or False
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers,
                                      default_root_dir=str(run_dir))
    with write_failure(run_dir), oom_advice(), warnings.catch_warnings():
        # Lightning warns that a mid-epoch resume is unreliable unless the loader itself is resumable; ours is
        # not, but the data module restores its sampler's place from the checkpoint (exact resume, tested).
        warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch")
        # The frozen codec and the EMA shadow stay in eval mode on purpose (no dropout or norm updates in them).
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")
        # Lightning's own use of a torch pytree name that torch deprecated; nothing a user can act on.
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        trainer.fit(module, datamodule=datamodule, ckpt_path=None if ckpt_path is None else str(ckpt_path))

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    guard = next((c for c in callbacks if isinstance(c, PreemptionCheckpoint) and c.stopped_at_step is not None),
                 None)
    step = int(trainer.global_step)
    timed_out = cfg.trainer.get("max_time") is not None and guard is None and step < cfg.trainer.max_steps
    return TrainResult(run_dir=run_dir, export_dir=run_dir / "export",
                       last_checkpoint=newest_good_checkpoint(run_dir / "checkpoints"), metrics=metrics,
                       preempted_at_step=None if guard is None else guard.stopped_at_step,
                       stopped_by=None if guard is None else guard.stopped_by, global_step=step,
                       time_limited_at_step=step if timed_out else None)
