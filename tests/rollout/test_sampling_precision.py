"""Sampling precision (`precision=` of worldmodel-rollout, -eval and -sim): what each name runs, what is recorded,
and that bfloat16 weights (`bf16-true`) sample what bf16 autocast with float32 weights samples, to bf16 rounding."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from worldmodel.checkpoint import load_world_model
from worldmodel.config import compose_config
from worldmodel.rollout.run import rollout
from worldmodel.runtime import sampling_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(("name", "device", "autocast", "weights", "label"), [
    ("auto", CPU, None, None, "float32"),
    ("auto", CUDA, torch.bfloat16, None, "bfloat16 autocast, float32 weights"),
    ("fp32", CUDA, None, None, "float32"),
    ("bf16", CPU, torch.bfloat16, None, "bfloat16 autocast, float32 weights"),
    ("bf16-true", CPU, torch.bfloat16, torch.bfloat16, "bfloat16 autocast, bfloat16 weights"),
])
def test_each_name_picks_its_autocast_and_weights(name: str, device: torch.device, autocast, weights,
                                                  label: str) -> None:
    chosen = sampling_precision(name, device)
    assert (chosen.autocast, chosen.weights, chosen.label) == (autocast, weights, label)


def test_resume_fingerprints_keep_the_old_keys_and_tell_bf16_weights_apart() -> None:
    # Evaluations begun before bf16-true existed wrote str(autocast dtype): they must still resume.
    assert sampling_precision("fp32", CPU).fingerprint == "None"
    assert sampling_precision("bf16", CPU).fingerprint == "torch.bfloat16"
    assert sampling_precision("bf16-true", CPU).fingerprint == "torch.bfloat16+weights=torch.bfloat16"


def test_an_unknown_precision_is_refused_before_the_checkpoint_loads(tmp_path: Path) -> None:
    cfg = compose_config("rollout", [f"checkpoint={tmp_path / 'missing'}", f"run_dir={tmp_path / 'out'}",
                                     "precision=fp16", "device=cpu"])
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, bf16-true, got 'fp16'"):
        rollout(cfg)  # a missing checkpoint would fail with a CheckpointError: the precision is read first
    assert not (tmp_path / "out").exists()


def test_bf16_weights_are_cast_at_load_and_the_codec_keeps_float32(tiny_export: Path) -> None:
    loaded = load_world_model(tiny_export, weights_dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    assert {b.dtype for b in loaded.model.buffers() if b.is_floating_point()} <= {torch.bfloat16}
    assert {p.dtype for p in loaded.codec.parameters()} <= {torch.float32}


def test_bf16_true_samples_what_bf16_autocast_samples(trained_run, tmp_path: Path) -> None:
    latents, manifests = {}, {}
    for name in ("fp32", "bf16", "bf16-true"):
        cfg = compose_config("rollout", [f"checkpoint={trained_run.export_dir}", f"run_dir={tmp_path / name}",
                                         "num_chunks=2", "num_steps=3", "clips.num_clips=1", "device=cpu",
                                         f"precision={name}", "progress=false"])
        rollout(cfg)
        manifests[name] = json.loads((tmp_path / name / "manifest.json").read_text())
        latents[name] = load_file(tmp_path / name / "clip000" / "latents.safetensors")["latents"]
    assert manifests["bf16-true"]["precision"] == "bfloat16 autocast, bfloat16 weights"
    assert manifests["bf16"]["precision"] == "bfloat16 autocast, float32 weights"
    # The sampler's state stays float32 whatever the weights.
    assert latents["bf16-true"].dtype == torch.float32
    scale = latents["fp32"].abs().max()
    # Autocast already runs every matrix product on bf16 copies of the weights: storing them in bf16 changes only
    # the ops autocast keeps in float32 (norms, embeddings added to float32 tensors), about as much as autocast
    # itself changes the result.
    autocast_change = (latents["bf16"] - latents["fp32"]).abs().max()
    weights_change = (latents["bf16-true"] - latents["bf16"]).abs().max()
    assert 0 < weights_change < 0.05 * scale
    assert weights_change < 3 * autocast_change


def test_the_simulator_loads_bf16_weights_and_steps(tiny_export: Path) -> None:
    import numpy as np

    from worldmodel.sim import WorldModelEnv

    env = WorldModelEnv(tiny_export, device="cpu", precision="bf16-true", horizon_s=1.0)
    assert {p.dtype for p in env.loaded.model.parameters()} == {torch.bfloat16}
    env.reset(seed=0, options={"scenario": "straight_cruise"})
    obs, *_, info = env.step(np.array([10.0, 0.0], np.float32))
    assert info["frames"].shape == (5, 1, 32, 64, 3) and obs["frames"].dtype == np.uint8
    with pytest.raises(ValueError, match="precision must be one of"):
        WorldModelEnv(tiny_export, device="cpu", precision="half")
