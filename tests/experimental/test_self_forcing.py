"""Self-forcing: which steps are self-forced, the clips they train on (generated references exactly as a rollout's
first chunk draws them, then the recorded frames), clips that cannot be warped, and a training run that uses it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.model.test_maskgwm import tiny_model
from worldmodel.codecs import DCTCodec
from worldmodel.config import compose_config
from worldmodel.data.actions import pack_actions
from worldmodel.data.collate import ClipCollator
from worldmodel.data.synthetic import SyntheticDriving
from worldmodel.diffusion import FlowEulerSampler, RectifiedFlow
from worldmodel.training.module import WorldModelModule
from worldmodel.experimental.self_forcing import SelfForcing, drop_first_frame, self_forced_clips
from worldmodel.training.train import train
from worldmodel.training.warp_prior import warp_prior_latents
from worldmodel.viz import from_uint8

CODEC = DCTCodec()
SAMPLER = FlowEulerSampler(num_steps=10, cfg_scale=4.0, churn=1.0)


def _batch(n: int = 2, frames: int = 6) -> dict:
    world = SyntheticDriving(num_clips=n, num_frames=frames, fps=3.3333, views="front", size=(32, 64), seed=0,
                             split="val")
    clips = [{**world[i], "sample_key": 1000 + i} for i in range(n)]
    return ClipCollator([1, 2, 3])(clips)


def _latents(batch: dict) -> torch.Tensor:
    return CODEC.encode_video(from_uint8(batch["frames"]))  # (B, T, V, C, h, w)


def _generators(n: int, seed: int = 5) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


@pytest.mark.parametrize("field, value, match", [
    ("probability", 1.5, "extension.self_forcing.probability"),
    ("generated_frames", 0, "extension.self_forcing.generated_frames"),
    ("start_tau", 0.0, "extension.self_forcing.start_tau"), ("after_step", -1, "extension.self_forcing.after_step")])
def test_bad_settings_are_named(field: str, value: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SelfForcing(**{field: value})


def test_which_steps_are_self_forced() -> None:
    assert not SelfForcing(probability=0.0).applies(10_000)
    assert SelfForcing(probability=1.0).applies(0)
    assert not SelfForcing(probability=1.0, after_step=500).applies(499)
    assert SelfForcing(probability=1.0, after_step=500).applies(500)
    half = SelfForcing(probability=0.3)
    # The draw follows the step alone (the same on every rank and after a resume) and varies from step to step.
    choices = [half.applies(step) for step in range(400)]
    assert choices == [SelfForcing(probability=0.3).applies(step) for step in range(400)]
    assert 0.22 < np.mean(choices) < 0.38, np.mean(choices)


def test_clips_are_generated_references_then_the_recorded_frames() -> None:
    batch, model, n = _batch(), tiny_model(warp_condition=True), 3
    with torch.no_grad():
        model.warp_embed.weight.normal_(std=0.2)  # an open warp path, so the condition matters
    latents = _latents(batch)
    values, valid = pack_actions(batch["actions"])
    plan = SelfForcing(probability=1.0, generated_frames=n, start_tau=0.2)
    clips, metas = self_forced_clips(model, SAMPLER, CODEC, latents, batch["meta"], values, valid, plan,
                                     _generators(2))
    assert clips.shape == (2, 5, *latents.shape[2:])
    torch.testing.assert_close(clips[:, n:], latents[:, n + 1:], atol=0, rtol=0)  # the recorded frames after them
    # The references are what a rollout's first chunk draws from frame 0: the warp of frame 0 along the poses as
    # start and condition, the run's sampler.
    warp = warp_prior_latents(CODEC, latents[:, :n + 1], batch["meta"], torch.ones(2, dtype=torch.long))[0][:, 1:]
    chunk = SAMPLER.sample(model, latents[:, :1], n + 1, values, valid, generator=_generators(2), start=warp,
                           start_tau=0.2, warp=warp)
    torch.testing.assert_close(clips[:, :n], chunk[:, 1:], atol=0, rtol=0)
    assert (clips[:, :n] - latents[:, 1:n + 1]).abs().amax() > 1e-3  # drawn, not copied from the recording
    for meta, before in zip(metas, batch["meta"]):
        np.testing.assert_array_equal(meta["ego_poses"], before["ego_poses"][1:])
        np.testing.assert_array_equal(meta["timestamps"], before["timestamps"][1:])
        np.testing.assert_array_equal(meta["intrinsics"], before["intrinsics"])


def test_the_plans_schedule_and_guidance_replace_the_runs() -> None:
    plan = SelfForcing(num_steps=4, cfg_scale=1.0)
    sampler = plan.sampler_for(SAMPLER)
    assert (sampler.num_steps, sampler.cfg_scale, sampler.churn) == (4, 1.0, 1.0)
    assert SelfForcing().sampler_for(SAMPLER).num_steps == 10


def test_clips_that_cannot_be_warped() -> None:
    batch = _batch()
    latents = _latents(batch)
    values, valid = pack_actions(batch["actions"])
    metas = [dict(batch["meta"][0], intrinsics=None), batch["meta"][1]]
    plan = SelfForcing(probability=1.0)
    assert self_forced_clips(tiny_model(warp_condition=True), SAMPLER, CODEC, latents, metas, values, valid,
                             plan) is None
    # From pure noise with a model that takes no warp, nothing needs one.
    made = self_forced_clips(tiny_model(), SAMPLER.replace(num_steps=2), CODEC, latents, metas, values, valid,
                             SelfForcing(probability=1.0, start_tau=1.0))
    assert made is not None and made[0].shape[1] == latents.shape[1] - 1
    with pytest.raises(ValueError, match="needs clips of at least 5 frames"):
        self_forced_clips(tiny_model(), SAMPLER, CODEC, latents[:, :4], metas, values, valid, plan)


def test_drop_first_frame_keeps_per_view_entries() -> None:
    meta = {"ego_poses": np.arange(12.0).reshape(4, 3), "ego_speed": np.arange(4.0), "cameras": ["CAM_FRONT"],
            "intrinsics": np.eye(3)[None]}
    dropped = drop_first_frame(meta)
    np.testing.assert_array_equal(dropped["ego_poses"], meta["ego_poses"][1:])
    np.testing.assert_array_equal(dropped["ego_speed"], [1.0, 2.0, 3.0])
    assert dropped["cameras"] == ["CAM_FRONT"] and dropped["intrinsics"] is meta["intrinsics"]


def test_module_trains_on_the_self_forced_batch() -> None:
    module = WorldModelModule(tiny_model(warp_condition=True).train(), CODEC, RectifiedFlow(), SAMPLER,
                              ema_decay=0.99, step_hooks=[SelfForcing(probability=1.0)])
    batch = _batch()
    forced = module.step_hooks[0].self_forced(module, batch)
    assert forced["self_forced"] and "frames" not in forced
    assert forced["latents"].shape[1] == 5 and forced["num_reference"].tolist() == [3, 3]
    loss, _ = module._loss(module.model, forced)
    loss.backward()
    assert torch.isfinite(loss) and module.model.warp_embed.weight.grad.abs().sum() > 0


def test_a_run_with_self_forcing(tmp_path: Path) -> None:
    cfg = compose_config("train", ["experiment=quickstart", "debug=fast_dev_run", "data.clip.size=[32,64]",
                                   "data.train.num_clips=4", "extension=self_forcing",
                                   "extension.self_forcing.probability=1.0", f"run_dir={tmp_path}"])
    result = train(cfg)
    assert result.metrics["train/self_forced"] == 1.0 and result.metrics["train/loss"] > 0
