"""FSDP for MaskGWM: one shard unit per transformer block, optional activation checkpointing of the same blocks."""
from __future__ import annotations

from typing import Any

from diffusers.models.attention import JointTransformerBlock
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.strategies.fsdp import _setup_activation_checkpointing
from torch import Tensor
from torch.distributed.fsdp import (FullOptimStateDictConfig, FullStateDictConfig, FullyShardedDataParallel,
                                    OptimStateKeyType, ShardedOptimStateDictConfig, ShardedStateDictConfig,
                                    StateDictType)
from torch.optim import Optimizer
from torch import nn

from worldmodel.model.maskgwm import MaskGWM
from worldmodel.model.reconstruction import ReconstructionModule
from worldmodel.model.temporal_block import TemporalBlock
from worldmodel.model.view_block import ViewBlock

# The units FSDP gathers one at a time: each block's weights exist in full only while it runs.
BLOCK_CLASSES: frozenset[type[nn.Module]] = frozenset({JointTransformerBlock, TemporalBlock, ViewBlock})
# The whole network is a unit too, so that its own top-level weights (embeddings, final layer) are flattened and
# sharded apart from everything else the LightningModule holds: the EMA shadow, a second MaskGWM, then shards in
# exactly the same way, and the average is taken shard by shard on every rank without gathering.
WRAP_CLASSES: frozenset[type[nn.Module]] = BLOCK_CLASSES | {ReconstructionModule, MaskGWM}


class MaskGWMFSDPStrategy(FSDPStrategy):
    """Lightning's FSDPStrategy, also on CPU processes over gloo.

    Lightning refuses `FSDPStrategy` itself with accelerator=cpu, but torch's FSDP shards, gathers and reduces on
    CPU tensors over gloo exactly as on GPUs over NCCL: the tests run real two-process FSDP that way, so that a
    collective that differs between ranks shows on a laptop before it hangs a GPU job.
    """

    def _setup_model(self, model: nn.Module) -> nn.Module:
        if self.root_device.type != "cpu" or isinstance(model, FullyShardedDataParallel):
            return super()._setup_model(model)
        # torch's FSDP accepts CPU parameters only when told the device; Lightning passes the device's index,
        # which a CPU device does not have.
        wrapped = FullyShardedDataParallel(module=model, cpu_offload=self.cpu_offload,
                                           mixed_precision=self.mixed_precision_config,
                                           sharding_strategy=self.sharding_strategy, device_id=self.root_device,
                                           **self.kwargs)
        _setup_activation_checkpointing(wrapped, self._activation_checkpointing_kwargs)
        return wrapped

    def lightning_module_state_dict(self) -> dict[str, Any]:
        if self.root_device.type != "cpu":
            return super().lightning_module_state_dict()
        with kept_in_place_state_dicts(self.model, self._state_dict_type):
            return self.model.state_dict()

    def optimizer_state(self, optimizer: Optimizer) -> dict[str, Tensor]:
        if self.root_device.type != "cpu":
            return super().optimizer_state(optimizer)
        optimizer = getattr(optimizer, "_optimizer", optimizer)  # unwrap LightningOptimizer
        with kept_in_place_state_dicts(self.model, self._state_dict_type):
            state = FullyShardedDataParallel.optim_state_dict(self.model, optimizer)
        if self._state_dict_type == "full" and self.global_rank == 0:
            # Lightning stores a full optimiser state keyed by parameter id, as a plain optimiser would.
            state = FullyShardedDataParallel.rekey_optim_state_dict(state, OptimStateKeyType.PARAM_ID, self.model)
        return state


def kept_in_place_state_dicts(module: nn.Module, kind: str):
    """FSDP's state-dict context for CPU processes: Lightning's asks torch to offload the gathered tensors to
    the CPU, and torch's offload of tensors that are already there frees memory the state dict still points at
    (a segmentation fault in the clone that follows). Full: gathered on rank 0; sharded: each rank's shard."""
    if kind == "full":
        return FullyShardedDataParallel.state_dict_type(
            module, StateDictType.FULL_STATE_DICT, FullStateDictConfig(offload_to_cpu=False, rank0_only=True),
            FullOptimStateDictConfig(offload_to_cpu=False, rank0_only=True))
    if kind == "sharded":
        return FullyShardedDataParallel.state_dict_type(
            module, StateDictType.SHARDED_STATE_DICT, ShardedStateDictConfig(offload_to_cpu=False),
            ShardedOptimStateDictConfig(offload_to_cpu=False))
    raise ValueError(f"state_dict_type must be full or sharded, got {kind!r}")


def maskgwm_fsdp_strategy(activation_checkpointing: bool = True, state_dict_type: str = "sharded",
                          sharding_strategy: str = "FULL_SHARD", cpu_offload: bool = False,
                          **kwargs: Any) -> FSDPStrategy:
    """Lightning's FSDPStrategy wrapping MaskGWM per block; extra kwargs go to FSDPStrategy / FSDP.

    Mixed precision comes from the trainer's `precision` (bf16-mixed: bf16 compute and gradient
    reduction, fp32 master weights and optimiser state).
    """
    return MaskGWMFSDPStrategy(
        auto_wrap_policy=set(WRAP_CLASSES),
        activation_checkpointing_policy=set(BLOCK_CLASSES) if activation_checkpointing else None,
        state_dict_type=state_dict_type, sharding_strategy=sharding_strategy, cpu_offload=cpu_offload, **kwargs)
