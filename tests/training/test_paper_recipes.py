"""The sd3_stage* recipes train on the paper's data, refuse to start without it, and checkpoint activations once."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from tests.conftest import TINY_RUN
from worldmodel.config import compose_config
from worldmodel.data.errors import DatasetRootError
from worldmodel.training.train import build_module, strategy_checkpoints, train

# docs/METHOD.md section 5: stage 1 on OpenDV, stage 2 on nuScenes + OpenDV equally, stage 3 on nuScenes' six cameras.
RECIPES = {
    "sd3_stage1_image": ("worldmodel.data.opendv.OpenDVClips", ["OPENDV_ROOT"]),
    "sd3_stage1_temporal": ("worldmodel.data.opendv.OpenDVClips", ["OPENDV_ROOT"]),
    "sd3_stage1_mr": ("worldmodel.data.opendv.OpenDVClips", ["OPENDV_ROOT"]),
    "sd3_stage2_long": ("worldmodel.data.registry.MixtureDataset", ["NUSCENES_ROOT", "OPENDV_ROOT"]),
    "sd3_stage3_mview": ("worldmodel.data.nuscenes.NuScenesClips", ["NUSCENES_ROOT"]),
}


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_recipe_composes_with_its_paper_dataset(recipe: str) -> None:
    cfg = compose_config("train", [f"experiment={recipe}"])
    reader, _ = RECIPES[recipe]
    assert cfg.data.train._target_ == reader
    assert cfg.model.num_layers == 24  # sd3_medium
    if recipe == "sd3_stage2_long":
        assert dict(cfg.data.train.weights) == {"nuscenes": 0.5, "opendv": 0.5}
    if recipe == "sd3_stage3_mview":
        assert cfg.data.clip.views is None and cfg.model.num_views == 6 and cfg.data.clip.num_frames == 8
    # From the MR stage on, both passes train (the full grid is what sampling runs).
    assert cfg.objective.also_unmasked_pass == (recipe not in ("sd3_stage1_image", "sd3_stage1_temporal"))


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_recipe_refuses_to_start_without_its_dataset_naming_the_variable(
        recipe: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NUSCENES_ROOT", "OPENDV_ROOT", "OPENDV_LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the defaults (datasets/nuscenes, datasets/opendv) are relative
    cfg = compose_config("train", [f"experiment={recipe}", f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(DatasetRootError) as refused:
        train(cfg)
    for variable in RECIPES[recipe][1]:
        assert f"set {variable}=<folder>" in str(refused.value)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_the_procedural_world_stays_one_override_away() -> None:
    cfg = compose_config("train", ["experiment=sd3_stage2_long", "data=quickstart_world"])
    assert cfg.data.train._target_ != RECIPES["sd3_stage2_long"][0]
    assert "synthetic" in cfg.data.train._target_.lower() or "pool" in cfg.data.train._target_.lower()


def test_fsdp_checkpoints_activations_once() -> None:
    fsdp = compose_config("train", ["experiment=sd3_stage2_long", "trainer=fsdp"])
    assert fsdp.gradient_checkpointing and strategy_checkpoints(fsdp.trainer)
    strategy = instantiate(fsdp.trainer.strategy)
    assert strategy._activation_checkpointing_kwargs  # FSDP recomputes the blocks ...
    # ... so the model does not checkpoint them as well (built at the quickstart's size to stay small).
    small = compose_config("train", [*TINY_RUN, "trainer=fsdp", "gradient_checkpointing=true"])
    assert not build_module(small, {}).model.gradient_checkpointing
    single = compose_config("train", [*TINY_RUN, "trainer=gpu", "gradient_checkpointing=true"])
    assert not strategy_checkpoints(single.trainer) and build_module(single, {}).model.gradient_checkpointing
    off = compose_config("train", ["experiment=sd3_stage2_long", "trainer=fsdp", "gradient_checkpointing=false"])
    assert not strategy_checkpoints(off.trainer)
