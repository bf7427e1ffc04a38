"""The shelf's plumbing: conf/extension/ groups compose alone and together, build the right hook, and a hook left at
its defaults changes nothing."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.diffusion.test_rectified_flow import LinearVelocity, clip
from worldmodel.config import CONF_DIR, compose_config
from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow
from worldmodel.diffusion.extension import ObjectiveExtension
from worldmodel.experimental.dynamics_loss import DynamicsLoss
from worldmodel.experimental.reference_noise import NoisyReferenceSampler, ReferenceNoise
from worldmodel.experimental.self_forcing import SelfForcing
from worldmodel.experimental.warp_prior import WarpPriorStart
from worldmodel.training.train import build_extensions, build_module

# Each option of conf/extension/ -> (the class it builds, the sampler class a run then samples with).
SHELF = {
    "reference_noise": (ReferenceNoise, NoisyReferenceSampler),
    "dynamics_loss": (DynamicsLoss, FlowEulerSampler),
    "warp_prior": (WarpPriorStart, FlowEulerSampler),
    "self_forcing": (SelfForcing, FlowEulerSampler),
}


def test_every_extension_config_is_listed() -> None:
    assert sorted(p.stem for p in Path(CONF_DIR, "extension").glob("*.yaml")) == sorted(SHELF)


def test_the_default_run_has_no_extension() -> None:
    module = build_module(compose_config("train", []), run_config={})
    assert module.objective.extensions == [] and module.step_hooks == []
    assert type(module.sampler) is FlowEulerSampler and not module.objective.needs_prior


@pytest.mark.parametrize("name", sorted(SHELF))
def test_each_extension_builds_its_hook_where_it_plugs_in(name: str) -> None:
    built, sampler = SHELF[name]
    module = build_module(compose_config("train", [f"extension={name}"]), run_config={})
    plugged = module.objective.extensions if issubclass(built, ObjectiveExtension) else module.step_hooks
    assert [type(e) for e in plugged] == [built]
    assert type(module.sampler) is sampler
    # A warp-prior start needs each clip's warp; the quickstart's warp-conditioned model needs it anyway.
    assert module.objective.needs_prior == (name == "warp_prior")


def test_several_extensions_at_once_in_their_order_with_settings() -> None:
    cfg = compose_config("train", ["extension=[dynamics_loss,reference_noise,self_forcing]",
                                   "extension.reference_noise.max_level=0.05", "extension.dynamics_loss.weight=0.3"])
    built = build_extensions(cfg)
    assert [type(e) for e in built] == [DynamicsLoss, ReferenceNoise, SelfForcing]
    assert built[0].weight == 0.3 and built[1].max_level == 0.05
    assert OmegaConf.select(cfg, "sampler._target_").endswith("NoisyReferenceSampler")


def test_something_that_is_not_an_extension_is_refused_by_name() -> None:
    cfg = compose_config("train", ["+extension.odd._target_=worldmodel.codecs.DCTCodec"])
    with pytest.raises(TypeError, match=r"extension.odd builds a DCTCodec, which is neither an ObjectiveExtension"):
        build_extensions(cfg)


def test_a_hook_at_its_defaults_leaves_the_loss_exactly_as_it_was() -> None:
    latents, num_reference = clip(), torch.tensor([1, 2, 0, 3])
    plain, _ = RectifiedFlow().training_loss(LinearVelocity(), latents, num_reference,
                                             generator=torch.Generator().manual_seed(4))
    hooked, _ = RectifiedFlow(extensions=[ObjectiveExtension()]).training_loss(
        LinearVelocity(), latents, num_reference, generator=torch.Generator().manual_seed(4))
    assert torch.equal(plain, hooked)
    with pytest.raises(TypeError, match="ObjectiveExtension instances, got str"):
        RectifiedFlow(extensions=["reference_noise"])
