"""Self-forcing: train some steps on reference frames the model generated itself, as a rollout's later chunks see.

Every chunk of a rollout after the first is conditioned on frames the model drew, which are blurrier and grainier
than the recorded frames it trained on, and the errors compound from chunk to chunk. Training on its own outputs
as context ("exposure bias"; Self Forcing, Huang et al. 2025) is meant to teach the network to pull such frames back
towards sharp ones instead of copying their flaws forward. `extension=self_forcing`; docs/FINDINGS.md has what it
measured.

A self-forced step takes the batch's clips of T frames and, without gradient and with the inference (EMA)
weights, samples frames 1..n from the real frame 0 as the rollout samples a chunk: the sampler's settings, the
warp of frame 0 along the recorded poses as the start (`start_tau`) and, for a warp-conditioned model, as its
condition. The step then trains on the clip [generated 1..n, recorded n+1..T-1] with n reference frames, whose
warp is the last generated frame moved along the recorded poses. The actions stay the clip's, measured from frame
0: one frame before the first reference (readers give only the clip's own ego states, too few to measure them
again from frame 1 up to the last action time).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from worldmodel.data.actions import pack_actions
from worldmodel.diffusion import FlowEulerSampler
from worldmodel.diffusion.prediction import takes_warp
from worldmodel.training.hooks import StepHook
from worldmodel.training.sampler import sample_generators
from worldmodel.training.warp_prior import warp_prior_latents

# The meta entries that hold one value per frame of the clip; they drop frame 0 with the clip.
PER_FRAME_META = ("timestamps", "ego_poses", "ego_speed", "ego_steering")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelfForcing(StepHook):
    """How often and how a training step conditions on generated reference frames (`extension.self_forcing`).

    probability: the share of steps (after `after_step`) that are self-forced, 0 = never (the paper).
    generated_frames: n, the reference frames generated and then conditioned on (the rollout's carry_frames).
    start_tau: where their sampling begins from the warp of frame 0 (the rollout's warp_start); 1 = pure noise.
    num_steps, cfg_scale: the sampler's schedule and guidance; null keeps the run's sampler settings.
    after_step: no self-forcing before this step, while the inference weights still draw noise.
    """

    probability: float = 0.0
    generated_frames: int = 3
    start_tau: float = 0.2
    num_steps: int | None = None
    cfg_scale: float | None = None
    after_step: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"extension.self_forcing.probability must be in [0, 1] (0: off), got {self.probability}")
        if self.generated_frames < 1:
            raise ValueError(f"extension.self_forcing.generated_frames must be >= 1, got {self.generated_frames}")
        if not 0.0 < self.start_tau <= 1.0:
            raise ValueError(f"extension.self_forcing.start_tau must be in (0, 1] (1: from pure noise), "
                             f"got {self.start_tau}")
        if self.after_step < 0:
            raise ValueError(f"extension.self_forcing.after_step must be >= 0, got {self.after_step}")

    def applies(self, step: int) -> bool:
        """Whether training step `step` is self-forced: a draw from the step number alone, so that every rank of
        a data-parallel run makes the same choice (a self-forced step samples with the inference weights, whose
        FSDP units every rank must gather together) and a resumed run makes the choices it would have made."""
        if self.probability == 0.0 or step < self.after_step:
            return False
        return bool(np.random.default_rng([step, 7]).random() < self.probability)

    def sampler_for(self, sampler: FlowEulerSampler) -> FlowEulerSampler:
        """The run's sampler with this plan's schedule and guidance where they are given."""
        changes = {name: value for name, value in (("num_steps", self.num_steps), ("cfg_scale", self.cfg_scale))
                   if value is not None}
        return sampler.replace(**changes)

    def before_loss(self, module: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch with its clips' first frames replaced by frames the module's inference weights generated from
        frame 0 on the steps `applies` picks; unchanged on the others, or when some clip cannot be warped."""
        if self.applies(module.global_step):
            batch = self.self_forced(module, batch)
        module.log("train/self_forced", float(batch.get("self_forced", False)),
                   batch_size=batch["num_reference"].shape[0])
        return batch

    def self_forced(self, module: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch with its clips' first frames generated (see `self_forced_clips`), or unchanged when some clip
        (on this rank or another) cannot be warped."""
        latents = module.batch_latents(batch)
        values, valid = pack_actions(batch["actions"])
        keys = batch.get("sample_key")
        generators = sample_generators(keys, module.device, stream=3) if keys is not None else None
        made = self_forced_clips(module.inference_model, module.sampler, module.codec, latents, batch["meta"],
                                 values.to(module.device), valid.to(module.device), self, generators,
                                 all_ranks=module.on_every_rank)
        if made is None:
            log.warning("step %d not self-forced: a clip of the batch (on this rank or another) has no calibration "
                        "or ego poses to warp", module.global_step)
            return batch
        clips, metas = made
        rest = {key: value for key, value in batch.items() if key != "frames"}
        return {**rest, "latents": clips, "meta": metas, "self_forced": True,
                "num_reference": torch.full_like(batch["num_reference"], self.generated_frames)}


def drop_first_frame(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A clip's meta without frame 0's per-frame entries (`PER_FRAME_META`), for the clip that starts at frame 1."""
    return {key: (value[1:] if key in PER_FRAME_META else value) for key, value in meta.items()}


@torch.no_grad()
def self_forced_clips(model: nn.Module, sampler: FlowEulerSampler, codec, latents: torch.Tensor,
                      metas: Sequence[Mapping[str, Any]], actions: torch.Tensor, action_valid: torch.Tensor,
                      plan: SelfForcing, generator: torch.Generator | Sequence[torch.Generator] | None = None,
                      all_ranks: Callable[[bool], bool] = bool
                      ) -> tuple[torch.Tensor, list[dict[str, Any]]] | None:
    """latents (B, T, V, C, h, w) of recorded clips -> (latents (B, T-1, V, C, h, w): frames 1..n generated
    from frame 0, then the recorded n+1..T-1; the metas of those clips), or None when some clip cannot be
    warped although the plan or the model needs its warp (no calibration or ego poses).

    actions (B, 19) and action_valid (B, 5): the clips' actions, measured from frame 0. `all_ranks(ok)`: whether
    `ok` holds on every rank (the strategy's reduce), so that when one rank's clips cannot be warped no rank
    samples, and the ranks' collectives stay in step.
    """
    n = plan.generated_frames
    b, t = latents.shape[:2]
    if t < n + 2:
        raise ValueError(f"extension.self_forcing.generated_frames={n} needs clips of at least {n + 2} frames "
                         f"(n references "
                         f"generated from frame 0 and one frame to predict), got {t}")
    head = latents[:, :n + 1]  # (B, n + 1, V, C, h, w): frame 0 and the frames to generate
    conditioned = takes_warp(model)
    kwargs: dict[str, Any] = {}
    if conditioned or plan.start_tau < 1.0:
        prior, has_prior = warp_prior_latents(codec, head, metas, torch.ones(b, dtype=torch.long))
        if not all_ranks(bool(has_prior.all())):
            return None
        warp = prior[:, 1:]  # (B, n, V, C, h, w)
        if plan.start_tau < 1.0:
            kwargs.update(start=warp, start_tau=plan.start_tau)
        if conditioned:
            kwargs["warp"] = warp
    generated = plan.sampler_for(sampler).sample(model, head[:, :1], n + 1, actions, action_valid,
                                                 generator=generator, **kwargs)  # (B, n + 1, ...)
    clips = torch.cat([generated[:, 1:].to(latents.dtype), latents[:, n + 1:]], dim=1)
    return clips, [drop_first_frame(meta) for meta in metas]
