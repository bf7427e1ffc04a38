"""Exports and checkpoints written before a setting left the package still load, resume and sample as they did."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from worldmodel.checkpoint import load_world_model
from worldmodel.experimental.reference_noise import NoisyReferenceSampler
from worldmodel.retired import RetiredSettingError, retire_settings
from worldmodel.training.resume import config_differences, stored_run_config

DCT = {"_target_": "worldmodel.codecs.DCTCodec", "block": 4, "luma": 10, "chroma": 3, "scale": 1.0,
       "chunk_size": 64}
EULER = {"_target_": "worldmodel.diffusion.FlowEulerSampler", "num_steps": 10, "cfg_scale": 4.0, "shift": 1.0,
         "churn": 1.0}


def test_a_retired_setting_at_its_old_default_is_dropped() -> None:
    assert retire_settings("codec", {**DCT, "channel_mean": None, "channel_std": None}, "x") == DCT
    assert retire_settings("sampler", {**EULER, "reference_noise": 0.0}, "x") == EULER
    assert retire_settings("codec", dict(DCT), "x") == DCT


def test_the_samplers_reference_noise_moves_to_the_experimental_sampler() -> None:
    node = retire_settings("sampler", {**EULER, "reference_noise": 0.2}, "x")
    assert node == {**EULER, "reference_noise": 0.2, "_target_": "worldmodel.experimental.reference_noise."
                                                                 "NoisyReferenceSampler"}


def test_a_value_this_version_cannot_rebuild_is_refused_naming_the_key() -> None:
    with pytest.raises(RetiredSettingError, match=r"old.ckpt: its run config sets codec.channel_std=\[2.0\], but the "
                                                  r"DCT channel standardisation was removed"):
        retire_settings("codec", {**DCT, "channel_mean": None, "channel_std": [2.0]}, "old.ckpt")


def _old_export(tiny_export: Path, tmp_path: Path, reference_noise: float) -> Path:
    """A copy of the export whose config has the keys the previous version wrote (codec stats, sampler noise)."""
    old = tmp_path / "old_export"
    shutil.copytree(tiny_export, old)
    marker = old / "worldmodel.json"
    info = json.loads(marker.read_text())
    assert info["config"]["codec"]["_target_"] == DCT["_target_"]
    info["config"]["codec"].update(channel_mean=None, channel_std=None)
    info["config"]["sampler"]["reference_noise"] = reference_noise
    marker.write_text(json.dumps(info))
    return old


def test_an_export_of_the_previous_version_loads_and_keeps_its_sampling(tiny_export: Path, tmp_path: Path) -> None:
    loaded = load_world_model(_old_export(tiny_export, tmp_path, 0.0))
    assert type(loaded.sampler).__name__ == "FlowEulerSampler"
    noisy = load_world_model(_old_export(tiny_export, tmp_path / "b", 0.3))
    assert isinstance(noisy.sampler, NoisyReferenceSampler) and noisy.sampler.reference_noise == 0.3


def test_a_checkpoint_of_the_previous_version_resumes_without_a_difference(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    old = {"model": {"_target_": "worldmodel.model.build_maskgwm", "num_layers": 2},
           "codec": {**DCT, "channel_mean": None, "channel_std": None}}
    torch.save({"worldmodel": {"format": 1, "config": old}}, path)
    now = {"model": {"_target_": "worldmodel.model.build_maskgwm", "num_layers": 2}, "codec": dict(DCT)}
    assert config_differences(stored_run_config(path), now) == []
