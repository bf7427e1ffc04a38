"""Test helpers for multi-process runs: an MR objective whose mask kind follows the global batch row, so that
two ranks with one clip each draw different kinds, and a callback that saves every rank's own weights."""
from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.distributed as dist

from worldmodel.diffusion import RectifiedFlow
from worldmodel.model.masking import MaskPlan


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class MaskKindByRow(RectifiedFlow):
    """Global batch row i takes the spatial mask (F_s) when i is even and the time mask (F_t) when it is odd.

    Rank r of a run with batch b per rank holds global rows r b ... r b + b - 1 (the data module gives rank r the
    positions r, r + W, ... of the epoch's order; with b = 1 and W = 2, rank 0 row 0 and rank 1 row 1), so with
    b = 1 rank 0 only ever runs F_s and rank 1 only F_t, and one process with batch 2 runs the same clips.
    """

    def mask_plan(self, model, eps, generator=None) -> MaskPlan:
        plan = super().mask_plan(model, eps, generator)
        rows = torch.arange(eps.shape[0], device=eps.device) + _rank() * eps.shape[0]
        time_mask = (rows % 2 == 1)[:, None].expand_as(plan.time_mask)
        return MaskPlan(plan.keep, time_mask, plan.mask_noise, plan.grid_width)


class SaveRankWeights(pl.Callback):
    """At the end of training every rank writes its own view of the weights to rank<r>.pt: for DDP the replica
    it trained and its EMA; for FSDP the full weights it takes part in gathering (rank 0 only holds them)."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from lightning.pytorch.strategies import FSDPStrategy

        from worldmodel.training.callbacks import gather_full_state_dict

        if isinstance(trainer.strategy, FSDPStrategy):
            state = {k.removeprefix("_forward_module."): v for k, v in gather_full_state_dict(trainer).items()}
        else:
            state = pl_module.state_dict()
        model = {k: v.detach().clone() for k, v in state.items() if k.startswith(("model.", "ema.shadow."))}
        self.dirpath.mkdir(parents=True, exist_ok=True)
        torch.save(model, self.dirpath / f"rank{trainer.global_rank}.pt")


class DropCalibrationOnRank(pl.Callback):
    """Rank `rank`'s clips lose their camera calibration at `step`, so that its batch cannot be warped there while
    the other ranks' can (a real dataset mixing calibrated and uncalibrated sources does this)."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank, self.step = rank, step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            for meta in batch["meta"]:
                meta.pop("intrinsics", None)
