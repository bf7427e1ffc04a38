"""Rectified-flow training objective: noise, timestep sampling, action dropout, MR mask plans and the velocity loss."""
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from worldmodel.diffusion import draws
from worldmodel.diffusion.draws import Generators
from worldmodel.diffusion.extension import NoisedBatch, ObjectiveExtension
from worldmodel.diffusion.prediction import output_to_velocity, prediction_of, sigma_data_of, takes_warp
from worldmodel.model.action_embedding import ACTION_GROUP_SIZES
from worldmodel.model.masking import MaskPlan, merge_mask_plans, sample_mask_plan

TIME_SAMPLINGS = ("logit_normal", "uniform")


#################################################################################
#                                 Rectified Flow                                #
#################################################################################

class RectifiedFlow:
    """Straight path z_tau = (1 - tau) z0 + tau eps; the loss is on the velocity eps - z0 (docs/METHOD.md section 3).

    The network outputs the velocity, or the clean sample when its config says `prediction: sample`
    (then converted to a velocity before the loss, see `worldmodel.diffusion.prediction`).

    The first `num_reference` frames of a clip stay clean (tau = 0, flagged as reference) and are left out of the
    loss; the other frames share one tau per sample. Each action group is dropped independently with probability
    `action_dropout` (classifier-free guidance), on top of the groups the dataset marks invalid.

    Mask reconstruction, only while the model is in training mode: each sample is masked with probability
    `mr_probability` (mask ratio `mask_ratio`, spatial mask with probability `spatial_mask_prob`, else the row-wise
    time mask) and its loss is the same velocity MSE on the masked pass's output, every token included. With
    `also_unmasked_pass` (MDT, and the paper's recipe: objective=rectified_flow_mr) every sample also runs unmasked,
    so the full-grid path that sampling uses trains at every step, and the loss is the unmasked pass's mean plus the
    masked pass's mean over the masked samples. Without it (masked-only, an ablation) a masked sample's loss is its
    masked pass's and the others' their unmasked pass's.
    Every rank of a DDP / FSDP run must run the same modules in the same order at every step, whatever its samples
    drew, or the ranks' collectives stop matching (a hang, or wrong weights). So the passes a step runs follow from
    the configuration alone: with MR on, the masked pass runs on every sample (one that did not draw MR weighs zero
    in it), and the unmasked pass runs on every sample unless every sample is always masked (masked-only with
    mr_probability 1 and no extension that exempts samples); both reconstruction branches run on every rank.

    A model built with `warp_condition` (our extension, worldmodel/training/warp_prior.py) also sees each sample's
    warp prior, clean, on every predicted frame, except for a fraction `warp_condition_dropout` of the samples, so
    that it still works where no warp can be made (clips without calibration or ego poses).

    `extensions`: experimental ideas (`worldmodel.experimental`, `extension=<name>` in the config), each an
    `ObjectiveExtension` that may change the noised batch before the forward pass and add a per-frame error.
    """

    def __init__(self, time_sampling: str = "logit_normal", logit_mean: float = 0.0, logit_std: float = 1.0,
                 action_dropout: float = 0.15, mr_probability: float = 0.0, mask_ratio: float = 0.25,
                 spatial_mask_prob: float = 0.5, also_unmasked_pass: bool = False,
                 warp_condition_dropout: float = 0.1,
                 extensions: Mapping[str, ObjectiveExtension] | Sequence[ObjectiveExtension] = ()):
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")
        for name, value in (("action_dropout", action_dropout), ("mr_probability", mr_probability),
                            ("spatial_mask_prob", spatial_mask_prob),
                            ("warp_condition_dropout", warp_condition_dropout)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.time_sampling = time_sampling
        self.logit_mean = logit_mean
        self.logit_std = logit_std
        self.action_dropout = action_dropout
        self.mr_probability = mr_probability
        self.mask_ratio = mask_ratio
        self.spatial_mask_prob = spatial_mask_prob
        self.also_unmasked_pass = also_unmasked_pass
        self.warp_condition_dropout = float(warp_condition_dropout)
        self.extensions = list(extensions.values() if isinstance(extensions, Mapping) else extensions)
        for extension in self.extensions:
            if not isinstance(extension, ObjectiveExtension):
                raise TypeError(f"objective extensions must be ObjectiveExtension instances, got "
                                f"{type(extension).__name__}")

    @property
    def needs_prior(self) -> bool:
        """Whether an extension needs each clip's warp prior (a warp-conditioned model needs it too)."""
        return any(extension.needs_prior for extension in self.extensions)

    def sample_tau(self, batch_size: int, device: torch.device | str = "cpu",
                   generator: Generators = None) -> torch.Tensor:
        """One diffusion time per sample: (B,) in (0, 1); logit-normal is SD3's default."""
        if self.time_sampling == "uniform":
            return draws.rand((batch_size,), device, generator)
        logits = draws.randn((batch_size,), device, generator=generator) * self.logit_std + self.logit_mean
        return torch.sigmoid(logits)

    @staticmethod
    def add_noise(z0: torch.Tensor, eps: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """z0, eps (B, T, ...), tau (B, T) -> z_tau = (1 - tau) z0 + tau eps, same shape as z0."""
        tau = tau.reshape(*tau.shape, *([1] * (z0.dim() - tau.dim()))).to(z0.dtype)  # (B, T, 1, ...)
        return (1 - tau) * z0 + tau * eps

    @staticmethod
    def target(z0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The velocity d z_tau / d tau = eps - z0."""
        return eps - z0

    def drop_actions(self, action_valid: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        """(B, G) bool -> (B, G) bool with each group independently dropped with p = action_dropout."""
        keep = draws.rand(action_valid.shape, action_valid.device, generator) >= self.action_dropout
        return action_valid.bool() & keep

    def choose_masked(self, model: nn.Module, tau: torch.Tensor,
                      generator: Generators = None) -> torch.Tensor | None:
        """(B,) bool: the samples that get mask reconstruction, or None when MR is off for this call.

        MR is off with mr_probability 0 and whenever the model is in eval mode (validation, EMA copy).
        """
        if self.mr_probability == 0.0 or not model.training:
            return None
        if getattr(model, "reconstruction", None) is None:
            raise ValueError("the objective has mask reconstruction on (mr_probability > 0) but the model has "
                             "no reconstruction module: build it with mask_reconstruction=true")
        return draws.rand(tau.shape, tau.device, generator) < self.mr_probability  # (B,)

    @property
    def always_masked(self) -> bool:
        """Whether every training sample is masked, by configuration alone (so a masked-only step needs no
        unmasked pass): MR on every sample, and no extension that may exempt a sample."""
        return self.mr_probability == 1.0 and not any(e.exempts_from_masking for e in self.extensions)

    def mask_plan(self, model: nn.Module, eps: torch.Tensor, generator: Generators = None) -> MaskPlan:
        """A random MR plan for clips eps (B, T, V, C, H, W) on the model's token grid; eps feeds the mask token."""
        b, t, v, _, h, w = eps.shape
        p = model.config.patch_size
        grid = (h // p, w // p)
        if not draws.per_sample(generator):
            return sample_mask_plan((b, t, v), grid, self.mask_ratio, self.spatial_mask_prob, eps, generator)
        return merge_mask_plans([sample_mask_plan((1, t, v), grid, self.mask_ratio, self.spatial_mask_prob,
                                                  eps[i:i + 1], g) for i, g in enumerate(generator)])

    def noised(self, latents: torch.Tensor, num_reference: torch.Tensor, generator: Generators = None
               ) -> NoisedBatch:
        """The draws of one batch: latents (B, T, V, C, H, W), num_reference (B,) -> tau, eps, z_tau and target."""
        b, t = latents.shape[:2]
        device = latents.device
        is_reference = torch.arange(t, device=device)[None] < num_reference.to(device)[:, None]  # (B, T)
        tau = self.sample_tau(b, device, generator)  # (B,)
        tau_frames = torch.where(is_reference, torch.zeros_like(tau[:, None]), tau[:, None])  # (B, T)
        eps = draws.randn(latents.shape, device, latents.dtype, generator)
        return NoisedBatch(latents=latents, eps=eps, tau=tau, tau_frames=tau_frames, is_reference=is_reference,
                           z_tau=self.add_noise(latents, eps, tau_frames), target=self.target(latents, eps))

    def training_loss(self, model: nn.Module, latents: torch.Tensor, num_reference: torch.Tensor,
                      actions: torch.Tensor | None = None, action_valid: torch.Tensor | None = None,
                      generator: Generators = None, prior: torch.Tensor | None = None,
                      has_prior: torch.Tensor | None = None, training: bool = True
                      ) -> tuple[torch.Tensor, dict]:
        """MSE between model velocity and eps - z0 on the predicted frames.

        latents (B, T, V, C, H, W) clean z0, num_reference (B,) long, actions (B, 19) or None,
        action_valid (B, 5) bool or None (all valid when actions are given) -> (loss, logs).
        prior (B, T, V, C, H, W) and has_prior (B,) bool: the warp prior of each sample's predicted frames and
        whether it has one, for a model built with `warp_condition` and for extensions that need it.
        training: False in validation (extensions that change what is learned then leave the batch alone).
        Random draws in order: tau, eps, action dropout, the extensions' draws in their order, (warp-conditioned
        model) the samples whose condition is dropped, then (MR on) the masked samples and their plan.
        `generator` is one generator, a sequence of one per sample (each sample's draws then depend on
        its generator alone), or None for torch's global generator.
        """
        b, device = latents.shape[0], latents.device
        noised = self.noised(latents, num_reference, generator)
        valid = None
        if actions is not None:
            if action_valid is None:
                action_valid = torch.ones(b, len(ACTION_GROUP_SIZES), dtype=torch.bool, device=device)
            valid = self.drop_actions(action_valid.to(device), generator)  # (B, G)
        noised = noised.but(training=training, prior=prior,
                            has_prior=None if prior is None else prior_flags(prior, has_prior, latents))
        for extension in self.extensions:
            noised = extension.perturb(noised, generator)
        warp = self._warp_condition(model, noised, generator)  # {} or {warp, warp_valid}
        weight = (~noised.is_reference).float()  # (B, T): reference frames are not predicted
        prediction, sigma_data = prediction_of(model), sigma_data_of(model)

        def frame_errors(plan: MaskPlan | None = None) -> torch.Tensor:
            """Per-frame MSE (B, T) of one forward pass on the whole batch (masked by `plan` when given)."""
            extra = dict(warp) if plan is None else {**warp, "mask_plan": plan}
            out = model(noised.z_tau, noised.tau_frames, actions=actions, action_valid=valid,
                        is_reference=noised.is_reference, **extra)
            pred = output_to_velocity(out, noised.z_tau, noised.tau_frames, prediction, sigma_data)  # float32
            err_map = (pred - noised.target.float()).square()
            err = err_map.mean(dim=(2, 3, 4, 5))  # (B, T)
            for extension in self.extensions:
                extra_error = extension.frame_error(err_map, pred, noised)
                if extra_error is not None:
                    err = err + extra_error
            return err

        masked = self.choose_masked(model, noised.tau, generator)
        if masked is not None and noised.unmaskable is not None:
            masked = masked & ~noised.unmaskable
        logs = dict(noised.logs)
        if masked is None:
            loss = mean_over(frame_errors(), weight)
        else:
            # Every sample runs the masked pass (see the class docstring: the same passes on every rank).
            err_masked = frame_errors(self.mask_plan(model, noised.eps, generator))  # (B, T)
            masked_weight = weight * masked[:, None].to(weight.dtype)  # (B, T): zero where a sample drew no MR
            if self.also_unmasked_pass:
                plain = mean_over(frame_errors(), weight)
                loss = plain + mean_over(err_masked, masked_weight)
                logs["loss_unmasked"] = plain.detach()
            elif self.always_masked:
                loss = mean_over(err_masked, weight)
            else:
                loss = mean_over(torch.where(masked[:, None], err_masked, frame_errors()), weight)
            logs["loss_masked"] = mean_over(err_masked, masked_weight).detach()
            logs["mr_fraction"] = masked.float().mean().detach()

        if warp:
            logs["warp_condition_fraction"] = warp["warp_valid"].any(dim=1).float().mean().detach()
        logs.update({
            "loss": loss.detach(),
            "tau_mean": noised.tau.mean().detach(),
            "reference_frames": noised.is_reference.float().sum(dim=1).mean().detach(),
        })
        if valid is not None:
            logs["action_keep_rate"] = valid.float().mean().detach()
        return loss, logs

    def _warp_condition(self, model: nn.Module, noised: NoisedBatch, generator: Generators
                        ) -> dict[str, torch.Tensor]:
        """The model's warp inputs {warp (B, T, ...), warp_valid (B, T)}, or {} for a model without the condition."""
        if not takes_warp(model):
            return {}
        is_reference = noised.is_reference
        if noised.prior is None:
            # No clip of the batch can be warped: every frame gets the zero warp, exactly a model without the
            # condition, but the warp embedding still runs, as on every other rank of a DDP / FSDP run.
            return {"warp": torch.zeros_like(noised.latents), "warp_valid": torch.zeros_like(is_reference)}
        keep = draws.rand((is_reference.shape[0],), is_reference.device, generator) >= self.warp_condition_dropout
        return {"warp": noised.prior, "warp_valid": (noised.has_prior & keep)[:, None] & ~is_reference}


def mean_over(err: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The weighted mean of per-frame errors (B, T), 0 when no frame has weight."""
    return (err * weight).sum() / weight.sum().clamp(min=1.0)


def prior_flags(prior: torch.Tensor, has_prior: torch.Tensor | None, latents: torch.Tensor) -> torch.Tensor:
    """has_prior (B,) bool on the latents' device (all True when None), after checking both shapes."""
    b, device = latents.shape[0], latents.device
    if prior.shape != latents.shape:
        raise ValueError(f"the warp prior has shape {tuple(prior.shape)}, the latents {tuple(latents.shape)}")
    has_prior = torch.ones(b, dtype=torch.bool, device=device) if has_prior is None else has_prior.to(device)
    if has_prior.shape != (b,):
        raise ValueError(f"has_prior must be one flag per sample, shape ({b},), got {tuple(has_prior.shape)}")
    return has_prior
