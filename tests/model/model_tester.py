"""A shared tester for the MaskGWM variants, in the shape of diffusers' `ModelTesterMixin`.

diffusers' tests/models/test_modeling_common.py gives every model class one mixin of common tests, and each model's
test file a small subclass with `prepare_init_args_and_inputs_for_common()` (a tiny config and dummy inputs). Here
the "model classes" are the configurations of the one `MaskGWM` class that build different networks or take
different inputs: single-view (long), multi-view (view blocks), mask reconstruction (a `MaskPlan`, training-only)
and warp-conditioned (`warp`, `warp_valid`). Each subclass names its preset, its overrides and what it feeds.

Zero-initialised branches: `initialize_weights` promises that a fresh model is the spatial (SD3) model per frame
and view, whatever the temporal blocks, view blocks, action embedding, warp embedding and reconstruction module F
hold otherwise. `zero_init_branches` lists, per branch, the parameters that make that promise (the ones the code
zeroes on purpose) and how to take the branch out (its module made the identity, or its input left out).
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.models.attention import JointTransformerBlock
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from safetensors.torch import load_file
from torch import nn

from worldmodel.config import CONF_DIR
from worldmodel.diffusion import RectifiedFlow
from worldmodel.model import MaskGWM, MaskPlan, build_maskgwm
from worldmodel.model.masking import merge_mask_plans, sample_mask_plan
from worldmodel.training.trainable import idle_parameter_names

# diffusers' file name for `save_pretrained` weights (safe_serialization=True is its default).
SAFETENSORS_NAME = "diffusion_pytorch_model.safetensors"
# Gradient checkpointing recomputes the same float32 ops on the CPU; anything beyond rounding noise is a bug.
CKPT_ATOL, CKPT_RTOL = 1e-6, 1e-5
# A sample run alone vs. in a batch of two may take other BLAS blockings, so only rounding may differ.
BATCH_ATOL, BATCH_RTOL = 1e-5, 1e-5
# A perturbed zero-init branch must move the output by clearly more than rounding.
CHANGED_ATOL = 1e-4


#################################################################################
#                                  Helpers                                      #
#################################################################################

@functools.cache
def preset_config(name: str) -> tuple[tuple[str, object], ...]:
    """The constructor kwargs of conf/model/<name>.yaml with its Hydra defaults (sd3_medium) composed in.

    Only the model group is composed (not the whole train config), so these tests do not depend on the data or
    trainer configs. Returned as a tuple of items so the cache hands out a value nobody can mutate.
    """
    with initialize_config_dir(config_dir=str(CONF_DIR / "model"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name=name), resolve=True)
    # build_maskgwm is the preset's _target_; pretrained_sd3 is a build option, not a MaskGWM constructor key.
    assert cfg.pop("_target_") == "worldmodel.model.build_maskgwm"
    assert cfg.pop("pretrained_sd3") is None
    return tuple(cfg.items())


def build_model(init_dict: dict, seed: int = 0) -> MaskGWM:
    """The model of `init_dict`, from a fixed seed (the tests compare fresh models with each other)."""
    torch.manual_seed(seed)
    return build_maskgwm(**init_dict)


def public_config(model: MaskGWM) -> dict:
    """The constructor kwargs, without diffusers' bookkeeping entries such as _name_or_path."""
    return {k: v for k, v in model.config.items() if not k.startswith("_")}


def slice_inputs(inputs: dict, index: int) -> dict:
    """Sample `index` of a batch of forward kwargs (tensors and the mask plan sliced on their batch axis)."""
    out = {}
    for key, value in inputs.items():
        if isinstance(value, MaskPlan):
            s = slice(index, index + 1)
            out[key] = MaskPlan(value.keep[s], value.time_mask[s], value.mask_noise[s], value.grid_width)
        elif isinstance(value, torch.Tensor):
            out[key] = value[index:index + 1]
        else:
            out[key] = value
    return out


def batch_row(inputs: dict, index: int) -> dict:
    """`inputs` with sample `index` given new draws (latents, tau, actions, warp, mask noise), the rest unchanged."""
    gen = torch.Generator().manual_seed(1234)
    out = dict(inputs)

    def redraw(x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y[index] = torch.randn(x[index].shape, generator=gen)
        return y

    out["latents"] = redraw(inputs["latents"])
    tau = inputs["tau"].clone()
    tau[index] = torch.rand(tau[index].shape, generator=gen) * 0.9 + 0.05
    out["tau"] = tau
    for key in ("actions", "warp"):
        if key in inputs:
            out[key] = redraw(inputs[key])
    if "mask_plan" in inputs:
        plan = inputs["mask_plan"]
        out["mask_plan"] = MaskPlan(plan.keep, plan.time_mask, redraw(plan.mask_noise), plan.grid_width)
    return out


def perturb(model: MaskGWM, names: list[str], seed: int = 1, scale: float = 0.2) -> None:
    """Give the named (zero-initialised) parameters random values, so the branches they gate act."""
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in names:
            params[name].copy_(torch.randn(params[name].shape, generator=gen) * scale)


def zero(model: MaskGWM, names: list[str]) -> None:
    """Set the named parameters back to their zero init."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in names:
            params[name].zero_()


def _identity(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """A block's forward made the identity on its first (token) argument, as a zero-gated block promises."""
    return x


@contextlib.contextmanager
def identity_modules(modules: list[nn.Module]) -> Iterator[None]:
    """Run `modules` as the identity (instance-level forward override) inside the block, restored after."""
    for module in modules:
        module.forward = _identity
    try:
        yield
    finally:
        for module in modules:
            del module.forward


@dataclass
class Branch:
    """A zero-initialised branch: the parameters its init zeroes, and how to run the model without it."""

    params: list[str]
    modules: Callable[[MaskGWM], list[nn.Module]] = lambda model: []  # made the identity to remove it
    inputs: tuple[str, ...] = ()  # forward kwargs left out to remove it


def zero_init_branches(model: MaskGWM) -> dict[str, Branch]:
    """Every zero-initialised branch the built model has (read off `MaskGWM.initialize_weights`)."""
    def gates(prefix: str, count: int | None) -> list[str]:
        blocks = [prefix] if count is None else [f"{prefix}.{i}" for i in range(count)]
        return [f"{b}.adaLN_modulation.1.{w}" for b in blocks for w in ("weight", "bias")]

    n = len(model.transformer_blocks)
    branches = {
        "temporal": Branch(gates("temporal_blocks", n), modules=lambda m: list(m.temporal_blocks)),
        # Bias-free projection, zero weight: no action is the zero embedding (ActionEmbedding docstring).
        # It reaches the tokens only through the temporal blocks' cross-attention (K and V).
        "action": Branch(["action_embedding.proj.weight"], inputs=("actions", "action_valid")),
    }
    if model.view_blocks is not None:
        branches["view"] = Branch(gates("view_blocks", n), modules=lambda m: list(m.view_blocks))
    if model.warp_embed is not None:
        branches["warp"] = Branch(["warp_embed.weight", "warp_embed.bias"], inputs=("warp", "warp_valid"))
    if model.reconstruction is not None:
        spatial_gate = [f"reconstruction.spatial.norm1.linear.{w}" for w in ("weight", "bias")]
        branches["reconstruction"] = Branch(gates("reconstruction.temporal", None) + spatial_gate,
                                            modules=lambda m: [m.reconstruction])
    return branches


def sd3_dead_parameter_names(model: MaskGWM) -> set[str]:
    """Parameters that SD3's context-pre-only joint blocks compute with but never use (exactly-zero gradient).

    The last spatial block and F_s (ReconstructionModule.spatial) are `context_pre_only` JointTransformerBlocks:
    diffusers' JointAttnProcessor2_0 still projects their text tokens to queries (add_q_proj, then norm_added_q with
    qk_norm) and runs them through the joint attention, but drops those outputs (no to_add_out; the block returns no
    text stream). So the weights are in the graph with a zero gradient, as in SD3Transformer2DModel's last block:
    SD3's design, inherited, not a MaskGWM wiring error.
    """
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, JointTransformerBlock) and module.context_pre_only:
            names |= {f"{prefix}.attn.{n}" for n, _ in module.attn.named_parameters()
                      if n.startswith(("add_q_proj.", "norm_added_q."))}
    return names


def count_calls(modules: list[nn.Module]) -> tuple[list[int], list]:
    """Forward-call counters (one per module) and the hook handles to remove.

    Pre-hooks, not forward hooks: non-reentrant checkpointing stops a recomputation early (an internal exception)
    once it has rebuilt the tensors backward needs, so a recomputed block may never reach its forward hooks.
    """
    counts = [0] * len(modules)
    handles = []
    for i, module in enumerate(modules):
        def hook(*_, i: int = i) -> None:
            counts[i] += 1
        handles.append(module.register_forward_pre_hook(hook))
    return counts, handles


#################################################################################
#                                 Tester Mixin                                  #
#################################################################################

class MaskGWMTesterMixin:
    """Common tests for one MaskGWM variant; a subclass sets the class attributes below (pytest collects it)."""

    preset: str = "tiny"
    init_overrides: dict = {}
    batch_size: int = 2
    num_frames: int = 3
    latent_size: tuple[int, int] = (8, 8)  # (h, w): a 4 x 4 token grid at patch size 2
    uses_mask_plan: bool = False  # pass a MaskPlan (training-only: the forward then runs in train mode)
    uses_warp: bool = False  # pass warp and warp_valid (needs warp_condition=True)
    # Branches whose effect this variant's forward must show once their zero init is perturbed.
    active_branches: tuple[str, ...] = ("temporal", "action")

    # ------------------------------------------------------------------ diffusers' hooks

    def prepare_init_args_and_inputs_for_common(self) -> tuple[dict, dict]:
        """(constructor kwargs, forward kwargs) of a tiny model and a batch for it, both from fixed seeds."""
        init_dict = {**dict(preset_config(self.preset)), **self.init_overrides}
        return init_dict, self.dummy_input(init_dict)

    def dummy_input(self, init_dict: dict) -> dict:
        """Forward kwargs: latents (B, T, V, C, h, w), per-frame tau, references, actions (+ warp, mask plan)."""
        b, t, (h, w) = self.batch_size, self.num_frames, self.latent_size
        v, c = init_dict["num_views"], init_dict["in_channels"]
        gen = torch.Generator().manual_seed(0)
        latents = torch.randn(b, t, v, c, h, w, generator=gen)
        # tau away from 0 and 1: at tau = 1 the mask token ignores f_m(eps), at 0 it ignores its learned token.
        tau = torch.rand(b, t, generator=gen) * 0.9 + 0.05
        # Sample 0 has a reference frame (m = 0), sample 1 none: the two samples condition differently.
        is_reference = torch.zeros(b, t, dtype=torch.bool)
        is_reference[0, 0] = True
        action_valid = torch.ones(b, 5, dtype=torch.bool)
        action_valid[1, 1] = False  # one dropped group (classifier-free guidance), so that path runs too
        inputs = {"latents": latents, "tau": tau, "actions": torch.randn(b, 19, generator=gen),
                  "action_valid": action_valid, "is_reference": is_reference}
        if self.uses_warp:
            inputs["warp"] = torch.randn(latents.shape, generator=gen)
            inputs["warp_valid"] = ~is_reference
        if self.uses_mask_plan:
            p = init_dict["patch_size"]
            noise = torch.randn(latents.shape, generator=gen)
            # One clip with the spatial mask (F_s), one with the time mask (F_t): both branches of F are on the
            # path, as the objective's merged per-sample plans (RectifiedFlow.mask_plan) allow.
            plans = [sample_mask_plan((1, t, v), (h // p, w // p), 0.25, spatial_prob, noise[i:i + 1], gen)
                     for i, spatial_prob in enumerate((1.0, 0.0))]
            inputs["mask_plan"] = merge_mask_plans(plans)
            assert inputs["mask_plan"].time_mask.tolist() == [[False] * v, [True] * v]
        return inputs

    # ------------------------------------------------------------------ helpers

    def model_and_inputs(self, seed: int = 0) -> tuple[MaskGWM, dict, dict]:
        init_dict, inputs = self.prepare_init_args_and_inputs_for_common()
        return self.in_mode(build_model(init_dict, seed)), init_dict, inputs

    def in_mode(self, model: MaskGWM) -> MaskGWM:
        """Eval mode, except for the MR variant: a mask plan is training-only (MaskGWM._check_mask_plan).

        Train mode is still deterministic: no module of MaskGWM has dropout (every dropout p is 0).
        """
        return model.train() if self.uses_mask_plan else model.eval()

    def perturbed(self, model: MaskGWM, seed: int = 1) -> MaskGWM:
        """Every zero-init branch given random weights: the whole network acts, as after some training."""
        perturb(model, [n for branch in zero_init_branches(model).values() for n in branch.params], seed)
        return model

    def objective(self) -> RectifiedFlow:
        """The training objective whose pass this variant's forward is (MR on only for the MR variant)."""
        return RectifiedFlow(mr_probability=1.0 if self.uses_mask_plan else 0.0)

    # ------------------------------------------------------------------ common tests

    def test_output_shape(self) -> None:
        model, init_dict, inputs = self.model_and_inputs()
        with torch.no_grad():
            out = model(**inputs)
        latents = inputs["latents"]
        expected = (*latents.shape[:3], init_dict["out_channels"], *latents.shape[4:])
        assert tuple(out.shape) == expected
        assert model.out_channels == init_dict["out_channels"]
        # The tiny presets predict frames in the latents' own space (prediction=sample): same shape as the input.
        assert out.shape == latents.shape
        assert out.dtype == torch.float32 and torch.isfinite(out).all()

    def test_determinism(self) -> None:
        model, _, inputs = self.model_and_inputs()
        self.perturbed(model)
        with torch.no_grad():
            first, second = model(**inputs), model(**inputs)
        assert torch.equal(first, second)

    def test_save_load_round_trip(self, tmp_path: Path) -> None:
        # MaskGWM is a diffusers ModelMixin + ConfigMixin: save_pretrained / from_pretrained is its export format.
        model, _, inputs = self.model_and_inputs()
        self.perturbed(model)  # otherwise a loader that re-ran the zero init would pass for those weights
        model.save_pretrained(tmp_path / "export")
        # The weights go through safetensors, under the names of the model's own state dict.
        saved = load_file(tmp_path / "export" / SAFETENSORS_NAME)
        state = model.state_dict()
        assert saved.keys() == state.keys()
        assert all(torch.equal(saved[k], state[k]) for k in state)

        loaded = self.in_mode(MaskGWM.from_pretrained(tmp_path / "export"))
        assert public_config(loaded) == public_config(model)
        loaded_state = loaded.state_dict()
        assert loaded_state.keys() == state.keys()
        assert all(torch.equal(loaded_state[k], state[k]) for k in state)
        assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in loaded.parameters())
        with torch.no_grad():
            assert torch.equal(loaded(**inputs), model(**inputs))

    def test_gradient_checkpointing_equivalence(self) -> None:
        model, _, inputs = self.model_and_inputs()
        self.perturbed(model)
        target = torch.randn(inputs["latents"].shape, generator=torch.Generator().manual_seed(7))
        # Blocks that MaskGWM._checkpointed (and ReconstructionModule._run) wrap: with checkpointing each runs
        # again in the backward pass, which is how we know checkpointing is really on.
        watched = [model.transformer_blocks[0], model.temporal_blocks[0]]
        if model.view_blocks is not None:
            watched.append(model.view_blocks[0])
        if self.uses_mask_plan:
            watched += [model.reconstruction.spatial, model.reconstruction.temporal]

        def run() -> tuple[torch.Tensor, dict[str, torch.Tensor], list[int]]:
            model.zero_grad(set_to_none=True)
            counts, handles = count_calls(watched)
            out = model(**inputs)
            (out - target).square().mean().backward()
            for handle in handles:
                handle.remove()
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            return out.detach(), grads, counts

        out_plain, grads_plain, calls_plain = run()
        assert not model.gradient_checkpointing
        model.enable_gradient_checkpointing()
        assert model.gradient_checkpointing and model.reconstruction.gradient_checkpointing
        out_ckpt, grads_ckpt, calls_ckpt = run()
        assert calls_plain == [1] * len(watched)
        assert calls_ckpt == [2] * len(watched)  # forward + recompute in backward
        torch.testing.assert_close(out_ckpt, out_plain, atol=CKPT_ATOL, rtol=CKPT_RTOL)
        assert grads_ckpt.keys() == grads_plain.keys()
        for name, grad in grads_plain.items():
            torch.testing.assert_close(grads_ckpt[name], grad, atol=CKPT_ATOL, rtol=CKPT_RTOL, msg=name)
        model.disable_gradient_checkpointing()
        assert not model.gradient_checkpointing and not model.reconstruction.gradient_checkpointing

    def test_zero_init_parameters_are_zero(self) -> None:
        model, _, _ = self.model_and_inputs()
        branches = zero_init_branches(model)
        assert set(self.active_branches) <= set(branches)
        params = dict(model.named_parameters())
        for name, branch in branches.items():
            for param in branch.params:
                assert torch.equal(params[param], torch.zeros_like(params[param])), (name, param)

    def test_zero_init_equivalence(self) -> None:
        """A fresh model equals itself with every zero-init branch taken out: bit for bit (x + 0 * f(x) = x)."""
        model, _, inputs = self.model_and_inputs()
        branches = {k: v for k, v in zero_init_branches(model).items() if k in self.active_branches}
        removed_inputs = {key for branch in branches.values() for key in branch.inputs}
        removed_modules = [m for branch in branches.values() for m in branch.modules(model)]
        spatial_inputs = {k: v for k, v in inputs.items() if k not in removed_inputs}

        def pair() -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                full = model(**inputs)
                with identity_modules(removed_modules):
                    spatial_only = model(**spatial_inputs)
            return full, spatial_only

        full, spatial_only = pair()
        assert torch.equal(full, spatial_only)
        # The same comparison must fail once the branches hold weights (else it could not catch a leaky branch).
        self.perturbed(model)
        full, spatial_only = pair()
        assert not torch.allclose(full, spatial_only, atol=CHANGED_ATOL)

    def test_each_zero_init_branch_acts_once_perturbed(self) -> None:
        """In a fully perturbed model, zeroing one branch's init parameters again changes the output."""
        model, _, inputs = self.model_and_inputs()
        self.perturbed(model)
        with torch.no_grad():
            reference = model(**inputs)
        branches = zero_init_branches(model)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        for name in self.active_branches:
            zero(model, branches[name].params)
            with torch.no_grad():
                without = model(**inputs)
            model.load_state_dict(state)
            assert not torch.allclose(without, reference, atol=CHANGED_ATOL), name
        # Branches the variant's forward does not run (the MR modules in an unmasked pass) change nothing.
        for name in set(branches) - set(self.active_branches):
            perturb(model, branches[name].params, seed=5)
            with torch.no_grad():
                assert torch.equal(model(**inputs), reference), name
            model.load_state_dict(state)

    def test_every_trainable_parameter_gets_a_gradient(self) -> None:
        model, _, inputs = self.model_and_inputs()
        # Perturbed: at the zero init every weight behind a zero gate gets an exactly-zero gradient (adaLN-Zero).
        self.perturbed(model)
        target = torch.randn(inputs["latents"].shape, generator=torch.Generator().manual_seed(7))
        (model(**inputs) - target).square().mean().backward()
        params = dict(model.named_parameters())
        outside_graph = {n for n, p in params.items() if p.grad is None}
        zero_grad = {n for n, p in params.items() if p.grad is not None and not p.grad.any()}
        # Off the graph: exactly the documented idle ones (the MR modules in an unmasked pass), nothing else.
        idle = idle_parameter_names(model, self.objective())
        assert outside_graph == idle
        # On the graph with an exactly-zero gradient: only the text-query projections of SD3's context-pre-only
        # blocks that this pass runs (`sd3_dead_parameter_names`); every other parameter is trained by this loss.
        assert zero_grad == sd3_dead_parameter_names(model) - idle

    def test_batch_independence(self) -> None:
        model, _, inputs = self.model_and_inputs()
        self.perturbed(model)  # the temporal / view / warp / MR branches act, so a leak across samples would show
        with torch.no_grad():
            batch = model(**inputs)
            # Sample 1 redrawn: sample 0's output must not move at all (same shapes, same kernels per row).
            other = model(**batch_row(inputs, 1))
            assert torch.equal(other[0], batch[0])
            assert not torch.allclose(other[1], batch[1], atol=CHANGED_ATOL)
            for i in range(self.batch_size):
                alone = model(**slice_inputs(inputs, i))
                torch.testing.assert_close(alone[0], batch[i], atol=BATCH_ATOL, rtol=BATCH_RTOL)
