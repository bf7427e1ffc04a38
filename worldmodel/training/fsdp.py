"""FSDP for MaskGWM: one shard unit per transformer block, optional activation checkpointing of the same blocks."""
from __future__ import annotations

from typing import Any

from diffusers.models.attention import JointTransformerBlock
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn

from worldmodel.model.reconstruction import ReconstructionModule
from worldmodel.model.temporal_block import TemporalBlock
from worldmodel.model.view_block import ViewBlock

# The units FSDP gathers one at a time: each block's weights exist in full only while it runs.
BLOCK_CLASSES: frozenset[type[nn.Module]] = frozenset({JointTransformerBlock, TemporalBlock, ViewBlock})
WRAP_CLASSES: frozenset[type[nn.Module]] = BLOCK_CLASSES | {ReconstructionModule}


def maskgwm_fsdp_strategy(activation_checkpointing: bool = True, state_dict_type: str = "sharded",
                          sharding_strategy: str = "FULL_SHARD", cpu_offload: bool = False,
                          **kwargs: Any) -> FSDPStrategy:
    """Lightning's FSDPStrategy wrapping MaskGWM per block; extra kwargs go to FSDPStrategy / FSDP.

    Mixed precision comes from the trainer's `precision` (bf16-mixed: bf16 compute and gradient
    reduction, fp32 master weights and optimiser state).
    """
    return FSDPStrategy(
        auto_wrap_policy=set(WRAP_CLASSES),
        activation_checkpointing_policy=set(BLOCK_CLASSES) if activation_checkpointing else None,
        state_dict_type=state_dict_type, sharding_strategy=sharding_strategy, cpu_offload=cpu_offload, **kwargs)
