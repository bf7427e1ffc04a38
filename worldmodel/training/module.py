"""LightningModule for MaskGWM: one training step, EMA, AdamW with warm-up, logging."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel

from worldmodel.codecs import LatentCodec
from worldmodel.data.actions import pack_actions
from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow
from worldmodel.diffusion.prediction import takes_warp
from worldmodel.training.adamw import adamw
from worldmodel.training.hooks import StepHook
from worldmodel.training.ema import EMAWeights
from worldmodel.training.faults import BadSampleCounter, FaultPolicy, NonFiniteLossError, describe_batch
from worldmodel.training.optimizer_state import match_optimizer_state
from worldmodel.training.rng import collect_rng_states, restore_rng_states
from worldmodel.training.sampler import sample_generators
from worldmodel.training.trainable import idle_parameter_names
from worldmodel.training.warp_prior import warp_prior_latents
from worldmodel.viz import from_uint8

CHECKPOINT_KEY = "worldmodel"
CHECKPOINT_FORMAT = 1

log = logging.getLogger(__name__)


class WorldModelModule(pl.LightningModule):
    """Trains a MaskGWM network with a rectified-flow objective on codec latents."""

    def __init__(self, model: nn.Module, codec: LatentCodec, objective: RectifiedFlow,
                 sampler: FlowEulerSampler, lr: float = 5e-5, betas: tuple[float, float] = (0.9, 0.999),
                 weight_decay: float = 0.0, warmup_steps: int = 1000, ema_decay: float | None = 0.999,
                 run_config: dict[str, Any] | None = None, faults: FaultPolicy | None = None,
                 step_hooks: Sequence[StepHook] = ()) -> None:
        super().__init__()
        self.model = model
        self.codec = codec.requires_grad_(False).eval()
        self.objective = objective
        self.sampler = sampler
        self.lr, self.betas, self.weight_decay, self.warmup_steps = lr, tuple(betas), weight_decay, warmup_steps
        self.ema = EMAWeights(model, ema_decay) if ema_decay else None
        # The resolved run config travels inside every checkpoint so rollout can rebuild the run.
        self.run_config = run_config or {}
        self.faults = faults or FaultPolicy()
        # Experimental ideas that change a step's batch before its loss (worldmodel/training/hooks.py).
        self.step_hooks = list(step_hooks)
        self.bad_samples = BadSampleCounter(self.faults)
        self.skipped_steps = 0
        self._skipping = False  # the running step's loss was non-finite and is skipped

    @property
    def inference_model(self) -> nn.Module:
        """The weights to sample with: the EMA copy when there is one."""
        return self.ema.shadow if self.ema is not None else self.model

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, T, V, H, W, 3) -> latents (B, T, V, C, h, w)."""
        return self.codec.encode_video(from_uint8(frames))

    def batch_latents(self, batch: dict[str, Any]) -> torch.Tensor:
        """Latents (B, T, V, C, h, w) of a batch: from a latent cache as they are, else encoded frames."""
        if "latents" in batch:
            return batch["latents"].to(self.device, torch.float32)
        return self.encode(batch["frames"])

    def _loss(self, model: nn.Module, batch: dict[str, Any], generator: torch.Generator | None = None,
              training: bool = True):
        latents = self.batch_latents(batch)
        values, valid = pack_actions(batch["actions"])
        # Validation of a model that only starts from the prior (not conditioned on it) has no use for the warp.
        needed = training or takes_warp(model)
        prior, has_prior = self.warp_prior(latents, batch) if needed else (None, None)
        return self.objective.training_loss(
            model, latents, batch["num_reference"].to(self.device), values.to(self.device),
            valid.to(self.device), generator=generator, prior=prior, has_prior=has_prior, training=training)

    @property
    def uses_warp(self) -> bool:
        """Whether training needs each clip's warp: for an objective extension (warp-prior training) or as the
        model's condition."""
        return bool(getattr(self.objective, "needs_prior", False)) or takes_warp(self.model)

    def warp_prior(self, latents: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The warp prior (B, T, V, C, h, w) of latents (B, T, V, C, h, w) and has_prior (B,) when training uses
        it, else (None, None)."""
        if not self.uses_warp:
            return None, None
        return warp_prior_latents(self.codec, latents, batch["meta"], batch["num_reference"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        where = describe_batch(batch, batch_idx, self.global_step, self.current_epoch)
        failures = self.bad_samples.update(batch, where)
        # Keyed batches (our training loader) draw each sample's noise from its own key.
        generators = sample_generators(batch["sample_key"], self.device) if "sample_key" in batch else None
        batch_size = batch["num_reference"].shape[0]
        for hook in self.step_hooks:
            batch = hook.before_loss(self, batch)
        loss, logs = self._loss(self.model, batch, generator=generators)
        if failures:
            self.log("train/bad_samples", float(self.bad_samples.failed), batch_size=batch_size)
        self._skipping = not self._all_finite(loss)
        if self._skipping:
            return self._nonfinite(loss, where)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        for name, value in logs.items():
            if name != "loss":
                self.log(f"train/{name}", value, batch_size=batch_size)
        return loss

    def on_every_rank(self, holds: bool) -> bool:
        """Whether `holds` is true on every rank (itself alone outside a data-parallel run or a Trainer)."""
        if self._trainer is None:
            return holds
        return bool(self.trainer.strategy.reduce_boolean_decision(holds, all=True))

    def _all_finite(self, loss: torch.Tensor) -> bool:
        # Every rank must take the same branch, or DDP waits forever for a skipped rank's gradients.
        return self.on_every_rank(bool(torch.isfinite(loss)))

    def _nonfinite(self, loss: torch.Tensor, where: str) -> None:
        value = loss.detach().float().item()
        if self.faults.nonfinite_loss == "skip" and self.skipped_steps < self.faults.max_skipped_steps:
            self.skipped_steps += 1
            log.warning("non-finite training loss (%s on this rank) at %s: step skipped (%d of at most %d)",
                        value, where, self.skipped_steps, self.faults.max_skipped_steps)
            return None  # Lightning then runs no backward and the optimiser updates nothing
        why = ("faults.nonfinite_loss=stop" if self.faults.nonfinite_loss == "stop"
               else f"more than faults.max_skipped_steps={self.faults.max_skipped_steps} steps were skipped")
        raise NonFiniteLossError(
            f"non-finite training loss ({value} on this rank) at {where}; training stopped ({why}). "
            f"Lower optim.lr, check those clips, use trainer.precision=32-true, or set faults.nonfinite_loss=skip")

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        # Lightning's FSDP precision refuses clipping by norm: under FSDP each rank holds a shard of every
        # gradient, and only the root FSDP module can reduce the shards' norms into the total one.
        root = self.trainer.model
        if gradient_clip_val and isinstance(root, FullyShardedDataParallel):
            if gradient_clip_algorithm not in (None, "norm"):
                raise ValueError(f"trainer.gradient_clip_algorithm={gradient_clip_algorithm!r} is not supported "
                                 f"with FSDP; use norm (the default)")
            root.clip_grad_norm_(gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        # Here rather than in on_train_batch_end, which runs after the callbacks: a checkpoint written at
        # the end of step k must hold the EMA of step k, or every resume loses one update. A skipped
        # step changed no weight, so the average does not move either.
        if self.ema is not None and not self._skipping:
            self.ema.update(self.model)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        # A fixed generator per batch makes the validation loss comparable across steps.
        generator = torch.Generator(device=self.device).manual_seed(1000 + batch_idx)
        # training=False: no extension changes what is learned here (no sample starts from a warp prior), so the
        # plain objective's loss stays comparable between runs (a warp-conditioned model still sees its warp).
        loss, _ = self._loss(self.inference_model, batch, generator=generator, training=False)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch["num_reference"].shape[0], sync_dist=True)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        # Called once the strategy has moved (or sharded) the network: fused on GPUs (worldmodel/training/adamw.py).
        optimizer = adamw([p for p in self.model.parameters() if p.requires_grad], lr=self.lr, betas=self.betas,
                          weight_decay=self.weight_decay)
        warmup = max(1, self.warmup_steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {"format": CHECKPOINT_FORMAT, "config": self.run_config}
        checkpoint["worldmodel_state"] = {"rng": collect_rng_states(), "bad_samples": self.bad_samples.state_dict(),
                                          "skipped_steps": self.skipped_steps}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning restores the optimiser from this same dict after the hook.
        if match_optimizer_state(checkpoint.get("optimizer_states", []), self.model,
                                 idle_parameter_names(self.model, self.objective),
                                 getattr(self._trainer, "ckpt_path", None) or "the checkpoint"):
            log.info("optimiser state of a run that listed the idle MR parameters: their entries dropped")
        state = checkpoint.get("worldmodel_state")
        if state is None:  # a checkpoint from before exact resume: weights and optimiser only
            return
        restore_rng_states(state["rng"])
        self.bad_samples.load_state_dict(state["bad_samples"])
        self.skipped_steps = int(state["skipped_steps"])
