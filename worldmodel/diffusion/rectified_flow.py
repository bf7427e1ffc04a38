"""Rectified-flow training objective: noise, timestep sampling, action dropout, MR mask plans and the velocity loss."""

import torch
from torch import nn

from worldmodel.diffusion import draws
from worldmodel.diffusion.draws import Generators
from worldmodel.diffusion.prediction import MIN_TAU, output_to_velocity, prediction_of, sigma_data_of, takes_warp
from worldmodel.model.action_embedding import ACTION_GROUP_SIZES
from worldmodel.model.masking import MaskPlan, merge_mask_plans, sample_mask_plan

TIME_SAMPLINGS = ("logit_normal", "uniform")
LOSS_SPACES = ("velocity", "sample")


#################################################################################
#                                 Rectified Flow                                #
#################################################################################

class RectifiedFlow:
    """Straight path z_tau = (1 - tau) z0 + tau eps; the loss is on the velocity eps - z0.

    The network outputs the velocity, or the clean sample when its config says `prediction: sample`
    (then converted to a velocity before the loss, see `worldmodel.diffusion.prediction`).

    The first `num_reference` frames of a clip stay clean (tau = 0, flagged as reference); the other
    frames share one tau per sample. Each action group is dropped independently with probability
    `action_dropout` (classifier-free guidance), on top of the groups the dataset marks invalid.

    Mask reconstruction (docs/METHOD.md section 3), only while the model is in training mode: each sample
    whose tau lies in `mr_tau_range` is masked with probability `mr_probability` (mask ratio
    `mask_ratio`, spatial mask with probability `spatial_mask_prob`, else the time mask) and its loss
    is the same velocity MSE on the masked pass's output, every token included. With `also_unmasked_pass`
    (MDT, and the paper's recipe: objective=rectified_flow_mr) every sample also runs unmasked, so the
    full-grid path that sampling uses trains at every step, and the loss is
    unmasked_weight * mean(unmasked pass) + masked_weight * mean(masked pass over the masked samples).
    Without it (masked-only, an ablation) a masked sample's loss is its masked pass's and the others' their
    unmasked pass's.
    Every rank of a DDP / FSDP run must run the same modules in the same order at every step, whatever its
    samples drew, or the ranks' collectives stop matching (a hang, or wrong weights). So the passes a step runs
    follow from the configuration alone: with MR on, the masked pass runs on every sample (a sample that did not
    draw MR weighs zero in it), and the unmasked pass runs on every sample unless every sample is always masked
    (masked-only with mr_probability 1 over the whole tau range); both reconstruction branches run on every rank
    (`ReconstructionModule`).

    Two options from the video-prediction literature, off by default (BENCHMARKS.md, "Reference noise and
    the dynamics loss", measures both on the quickstart):
    `reference_noise` > 0 noises each sample's reference frames to a level drawn uniformly in
    [0, reference_noise] (the model still sees them as clean, tau = 0): context-frame noise augmentation
    (SVD, GameNGen), so a rollout that carries its own imperfect frames forward sees what it trained on.
    `dynamics_weight` > 0 adds Vista's dynamics enhancement loss (`dynamics_error`) with that weight.

    Warp-prior training (`warp_prior_probability` > 0, with a `prior` passed to `training_loss`): that fraction
    of the samples that have a prior start from it instead of from their own clean frames, at a time drawn
    uniformly in `warp_prior_tau`: z_tau = (1 - tau) prior + tau eps, and the target is the velocity that
    leads from there to the truth, (z_tau - z0) / tau. The prior is the last reference frame moved along the
    ego's motion (`worldmodel.training.warp_prior`): the network learns to correct what the warp start of a
    rollout (`worldmodel.rollout.warp_start`) gives it, instead of seeing that input for the first time there.
    Prior-started samples are never masked for MR.

    A model built with `warp_condition` also sees the prior itself, clean, on every predicted frame of a sample
    that has one (`MaskGWM.embed_warp`), except for a fraction `warp_condition_dropout` of the samples, so that
    it still works where no warp can be made (clips without calibration or ego poses).
    """

    def __init__(self, time_sampling: str = "logit_normal", logit_mean: float = 0.0, logit_std: float = 1.0,
                 action_dropout: float = 0.15, loss_on_reference: bool = False, mr_probability: float = 0.0,
                 mask_ratio: float = 0.25, spatial_mask_prob: float = 0.5, also_unmasked_pass: bool = False,
                 unmasked_weight: float = 1.0, masked_weight: float = 1.0,
                 mr_tau_range: tuple[float, float] = (0.0, 1.0), loss_space: str = "velocity",
                 reference_noise: float = 0.0, dynamics_weight: float = 0.0, warp_prior_probability: float = 0.0,
                 warp_prior_tau: tuple[float, float] = (0.1, 0.5), warp_condition_dropout: float = 0.1):
        if loss_space not in LOSS_SPACES:
            raise ValueError(f"loss_space must be one of {LOSS_SPACES}, got {loss_space!r}")
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")
        for name, value in (("action_dropout", action_dropout), ("mr_probability", mr_probability),
                            ("spatial_mask_prob", spatial_mask_prob),
                            ("warp_prior_probability", warp_prior_probability),
                            ("warp_condition_dropout", warp_condition_dropout)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        if not 0.0 <= reference_noise < 1.0:
            raise ValueError(f"reference_noise must be in [0, 1) (0: clean reference frames), got {reference_noise}")
        if unmasked_weight < 0 or masked_weight < 0 or unmasked_weight + masked_weight == 0:
            raise ValueError(f"unmasked_weight and masked_weight must be >= 0 and not both 0, got "
                             f"{unmasked_weight} and {masked_weight}")
        if dynamics_weight < 0:
            raise ValueError(f"dynamics_weight must be >= 0 (0: off), got {dynamics_weight}")
        # Below MIN_TAU the velocity of a clean-frame prediction is clamped, and the prior's target would not be.
        pair = [warp_prior_tau] if isinstance(warp_prior_tau, (int, float, str)) else list(warp_prior_tau)
        if len(pair) != 2 or not MIN_TAU <= float(pair[0]) <= float(pair[1]) <= 1.0:
            raise ValueError(f"warp_prior_tau must be [lo, hi] with {MIN_TAU} <= lo <= hi <= 1 (the times a warp "
                             f"start is sampled from, e.g. [0.1, 0.5]), got {warp_prior_tau}")
        prior_lo, prior_hi = float(pair[0]), float(pair[1])
        lo, hi = (float(x) for x in mr_tau_range)
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"mr_tau_range must be (lo, hi) with 0 <= lo <= hi <= 1, got {tuple(mr_tau_range)}")
        self.time_sampling = time_sampling
        self.logit_mean = logit_mean
        self.logit_std = logit_std
        self.action_dropout = action_dropout
        self.loss_on_reference = loss_on_reference
        self.mr_probability = mr_probability
        self.mask_ratio = mask_ratio
        self.spatial_mask_prob = spatial_mask_prob
        self.also_unmasked_pass = also_unmasked_pass
        self.unmasked_weight = float(unmasked_weight)
        self.masked_weight = float(masked_weight)
        self.mr_tau_range = (lo, hi)
        self.loss_space = loss_space
        self.reference_noise = float(reference_noise)
        self.dynamics_weight = float(dynamics_weight)
        self.warp_prior_probability = float(warp_prior_probability)
        self.warp_prior_tau = (prior_lo, prior_hi)
        self.warp_condition_dropout = float(warp_condition_dropout)

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
        draw = draws.rand(tau.shape, tau.device, generator) < self.mr_probability  # (B,)
        lo, hi = self.mr_tau_range
        return draw & (tau >= lo) & (tau <= hi)

    @property
    def always_masked(self) -> bool:
        """Whether every training sample is masked, by configuration alone (so a masked-only step needs no
        unmasked pass): MR on every sample over the whole tau range, and no sample starting from a warp prior."""
        return (self.mr_probability == 1.0 and self.mr_tau_range == (0.0, 1.0)
                and self.warp_prior_probability == 0.0)

    def mask_plan(self, model: nn.Module, eps: torch.Tensor, generator: Generators = None) -> MaskPlan:
        """A random MR plan for clips eps (B, T, V, C, H, W) on the model's token grid; eps feeds the mask token."""
        b, t, v, _, h, w = eps.shape
        p = model.config.patch_size
        grid = (h // p, w // p)
        if not draws.per_sample(generator):
            return sample_mask_plan((b, t, v), grid, self.mask_ratio, self.spatial_mask_prob, eps, generator)
        return merge_mask_plans([sample_mask_plan((1, t, v), grid, self.mask_ratio, self.spatial_mask_prob,
                                                  eps[i:i + 1], g) for i, g in enumerate(generator)])

    def training_loss(self, model: nn.Module, latents: torch.Tensor, num_reference: torch.Tensor,
                      actions: torch.Tensor | None = None, action_valid: torch.Tensor | None = None,
                      generator: Generators = None, prior: torch.Tensor | None = None,
                      has_prior: torch.Tensor | None = None, start_from_prior: bool = True
                      ) -> tuple[torch.Tensor, dict]:
        """MSE between model velocity and eps - z0 on the predicted frames.

        latents (B, T, V, C, H, W) clean z0, num_reference (B,) long, actions (B, 19) or None,
        action_valid (B, 5) bool or None (all valid when actions are given) -> (loss, logs).
        prior (B, T, V, C, H, W) and has_prior (B,) bool: the warp prior of each sample's predicted frames and
        whether it has one: the start of warp_prior_probability > 0 (unless `start_from_prior` is False, as in
        validation) and the condition of a model built with `warp_condition`.
        Random draws in order: tau, eps, (reference_noise > 0) the reference noise level and its noise, action
        dropout, (warp prior on) the samples that start from it and their times, (warp-conditioned model) the
        samples whose condition is dropped, then (MR on) the masked samples and their plan.
        `generator` is one generator, a sequence of one per sample (each sample's draws then depend on
        its generator alone), or None for torch's global generator.
        """
        b, t = latents.shape[:2]
        device = latents.device
        prediction, sigma_data = prediction_of(model), sigma_data_of(model)
        is_reference = torch.arange(t, device=device)[None] < num_reference.to(device)[:, None]  # (B, T)
        tau = self.sample_tau(b, device, generator)  # (B,)
        tau_frames = torch.where(is_reference, torch.zeros_like(tau[:, None]), tau[:, None])  # (B, T)

        eps = draws.randn(latents.shape, device, latents.dtype, generator)
        z_tau = self.add_noise(latents, eps, tau_frames)  # (B, T, V, C, H, W)
        target = self.target(latents, eps)  # (B, T, V, C, H, W)
        if self.reference_noise > 0:
            level = draws.rand((b,), device, generator) * self.reference_noise  # (B,)
            ref_level = torch.where(is_reference, level[:, None], torch.zeros_like(tau_frames))
            z_tau = self.add_noise(z_tau, draws.randn(latents.shape, device, latents.dtype, generator), ref_level)

        valid = None
        if actions is not None:
            if action_valid is None:
                action_valid = torch.ones(b, len(ACTION_GROUP_SIZES), dtype=torch.bool, device=device)
            valid = self.drop_actions(action_valid.to(device), generator)  # (B, G)
        from_prior = None
        if prior is not None:
            has_prior = self._prior_flags(prior, has_prior, latents)
        if self.warp_prior_probability > 0 and prior is not None and start_from_prior:
            from_prior, tau, tau_frames, z_tau, target = self._start_from_prior(
                prior, has_prior, latents, eps, tau, is_reference, z_tau, target, generator)
        warp = self._warp_condition(model, prior, has_prior, is_reference, generator, latents)  # {} or warp, warp_valid
        weight = torch.ones(b, t, device=device) if self.loss_on_reference else (~is_reference).float()  # (B, T)

        def frame_errors(plan: MaskPlan | None = None) -> torch.Tensor:
            """Per-frame MSE (B, T) of one forward pass on the whole batch (masked by `plan` when given)."""
            extra = dict(warp) if plan is None else {**warp, "mask_plan": plan}
            out = model(z_tau, tau_frames, actions=actions, action_valid=valid, is_reference=is_reference, **extra)
            pred = output_to_velocity(out, z_tau, tau_frames, prediction, sigma_data)  # float32
            err_map = (pred - target.float()).square()
            err = err_map.mean(dim=(2, 3, 4, 5))  # (B, T)
            if self.dynamics_weight > 0:
                err = err + self.dynamics_weight * dynamics_error(err_map, pred, z_tau, latents, tau_frames,
                                                                  is_reference)
            # z0_hat - z0 = -tau (v_hat - v): the clean-latent MSE is the velocity MSE times tau^2.
            return err * tau_frames.float().square() if self.loss_space == "sample" else err

        def mean_over(err: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return (err * w).sum() / w.sum().clamp(min=1.0)

        masked = self.choose_masked(model, tau, generator)
        if masked is not None and from_prior is not None:
            # A hidden token of a prior-started sample would have to guess the warp's error as well as the frame.
            masked = masked & ~from_prior
        logs = {}
        if masked is None:
            loss = mean_over(frame_errors(), weight)
        else:
            # Every sample runs the masked pass (see the class docstring: the same passes on every rank).
            err_masked = frame_errors(self.mask_plan(model, eps, generator))  # (B, T)
            masked_weight = weight * masked[:, None].to(weight.dtype)  # (B, T): zero where a sample drew no MR
            if self.also_unmasked_pass:
                err_plain = frame_errors()  # (B, T)
                loss = (self.unmasked_weight * mean_over(err_plain, weight)
                        + self.masked_weight * mean_over(err_masked, masked_weight))
                logs["loss_unmasked"] = mean_over(err_plain, weight).detach()
            elif self.always_masked:
                loss = mean_over(err_masked, weight)
            else:
                err = torch.where(masked[:, None], err_masked, frame_errors())  # (B, T)
                loss = mean_over(err, weight)
            logs["loss_masked"] = mean_over(err_masked, masked_weight).detach()
            logs["mr_fraction"] = masked.float().mean().detach()

        if from_prior is not None:
            logs["warp_prior_fraction"] = from_prior.float().mean().detach()
        if warp:
            logs["warp_condition_fraction"] = warp["warp_valid"].any(dim=1).float().mean().detach()
        logs.update({
            "loss": loss.detach(),
            "tau_mean": tau.mean().detach(),
            "reference_frames": is_reference.float().sum(dim=1).mean().detach(),
        })
        if valid is not None:
            logs["action_keep_rate"] = valid.float().mean().detach()
        return loss, logs

    @staticmethod
    def _prior_flags(prior: torch.Tensor, has_prior: torch.Tensor | None, latents: torch.Tensor) -> torch.Tensor:
        """has_prior (B,) bool on the latents' device (all True when None), after checking both shapes."""
        b, device = latents.shape[0], latents.device
        if prior.shape != latents.shape:
            raise ValueError(f"the warp prior has shape {tuple(prior.shape)}, the latents {tuple(latents.shape)}")
        has_prior = torch.ones(b, dtype=torch.bool, device=device) if has_prior is None else has_prior.to(device)
        if has_prior.shape != (b,):
            raise ValueError(f"has_prior must be one flag per sample, shape ({b},), got {tuple(has_prior.shape)}")
        return has_prior

    def _warp_condition(self, model: nn.Module, prior: torch.Tensor | None, has_prior: torch.Tensor | None,
                        is_reference: torch.Tensor, generator: Generators, latents: torch.Tensor
                        ) -> dict[str, torch.Tensor]:
        """The model's warp inputs {warp (B, T, ...), warp_valid (B, T)}, or {} for a model without the condition."""
        if not takes_warp(model):
            return {}
        if prior is None:
            # No clip of the batch can be warped: every frame gets the zero warp, exactly a model without the
            # condition, but the warp embedding still runs, as on every other rank of a DDP / FSDP run.
            return {"warp": torch.zeros_like(latents), "warp_valid": torch.zeros_like(is_reference)}
        keep = draws.rand((is_reference.shape[0],), is_reference.device, generator) >= self.warp_condition_dropout
        return {"warp": prior, "warp_valid": (has_prior & keep)[:, None] & ~is_reference}

    def _start_from_prior(self, prior: torch.Tensor, has_prior: torch.Tensor, latents: torch.Tensor,
                          eps: torch.Tensor, tau: torch.Tensor, is_reference: torch.Tensor, z_tau: torch.Tensor,
                          target: torch.Tensor, generator: Generators):
        """Swap the chosen samples' noisy input for the noised prior, their time and their target (see the class)."""
        b, device = latents.shape[0], latents.device
        chosen = (draws.rand((b,), device, generator) < self.warp_prior_probability) & has_prior  # (B,)
        lo, hi = self.warp_prior_tau
        tau = torch.where(chosen, lo + (hi - lo) * draws.rand((b,), device, generator), tau)  # (B,)
        tau_frames = torch.where(is_reference, torch.zeros_like(tau[:, None]), tau[:, None])  # (B, T)
        starts = chosen[:, None] & ~is_reference  # (B, T) frames that start from the prior
        shape = (*starts.shape, *([1] * (latents.dim() - 2)))
        from_prior = self.add_noise(prior.to(latents.dtype), eps, tau_frames)
        z_tau = torch.where(starts.reshape(shape), from_prior, z_tau)
        # The velocity that leads from z_tau to the truth in the remaining time tau: (z_tau - z0) / tau.
        safe_tau = tau_frames.clamp(min=MIN_TAU).reshape(shape).to(latents.dtype)
        target = torch.where(starts.reshape(shape), (z_tau - latents) / safe_tau, target)
        return chosen, tau, tau_frames, z_tau, target


def dynamics_error(err_map: torch.Tensor, velocity: torch.Tensor, z_tau: torch.Tensor, z0: torch.Tensor,
                   tau: torch.Tensor, is_reference: torch.Tensor) -> torch.Tensor:
    """Per-frame error (B, T) re-weighted towards where the predicted frame-to-frame change is wrong (Vista).

    err_map (B, T, V, C, H, W) squared velocity errors; the weight of a position in frame i is
    ||(x_i - x_{i-1}) - (x0_i - x0_{i-1})||^2 over channels, x the clean-frame estimate (the truth on
    reference frames), without gradient and scaled to mean 1 per frame; frame 0 gets weight 0.
    """
    t4 = tau[..., None, None, None, None].float()
    # (x_i - x_{i-1}) - (x0_i - x0_{i-1}) is the frame-to-frame change of the estimate's error x - x0.
    miss = (z_tau.float() - t4 * velocity.float()).detach() - z0.float()  # (B, T, V, C, H, W)
    miss = torch.where(is_reference[..., None, None, None, None], torch.zeros_like(miss), miss)
    wrong = miss.diff(dim=1).square().sum(dim=3, keepdim=True)  # (B, T-1, V, 1, H, W)
    wrong = wrong / wrong.mean(dim=(2, 3, 4, 5), keepdim=True).clamp(min=1e-8)
    weighted = (wrong * err_map[:, 1:].float()).mean(dim=(2, 3, 4, 5))  # (B, T-1)
    return torch.cat([torch.zeros_like(weighted[:, :1]), weighted], dim=1)
