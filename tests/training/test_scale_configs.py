"""trainer=ddp and trainer=fsdp compose into the strategies they promise (FSDP itself needs GPUs)."""
from __future__ import annotations

from pathlib import Path

from diffusers.models.attention import JointTransformerBlock
from hydra.utils import instantiate
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

from worldmodel.config import compose_config
from worldmodel.model.temporal_block import TemporalBlock
from worldmodel.model.view_block import ViewBlock


def test_fsdp_config_wraps_and_checkpoints_each_block(tmp_path: Path) -> None:
    cfg = compose_config("train", ["trainer=fsdp", "trainer.num_nodes=2", "gradient_checkpointing=true", f"run_dir={tmp_path}"])
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.num_nodes == 2
    strategy = instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, FSDPStrategy)
    assert strategy._state_dict_type == "sharded"
    wrapped = strategy.kwargs["auto_wrap_policy"]._module_classes
    assert {JointTransformerBlock, TemporalBlock, ViewBlock} <= set(wrapped)
    checkpointed = strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes
    assert set(checkpointed) == {JointTransformerBlock, TemporalBlock, ViewBlock}


def test_ddp_config_builds_a_ddp_trainer_on_cpu(tmp_path: Path) -> None:
    cfg = compose_config("train", ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1",
                                   "trainer.precision=32-true", f"run_dir={tmp_path}"])
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert isinstance(trainer.strategy, DDPStrategy)
    # Every rank runs the same modules each step (tests/training/test_rank_safe.py), so no unused-parameter search.
    assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is False
