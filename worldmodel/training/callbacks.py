"""Training callbacks: checkpoints, export a `save_pretrained` folder, and write sample videos as training runs."""
from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from worldmodel.checkpoint import model_from_training_state, save_export
from worldmodel.data.actions import pack_actions
from worldmodel.data.collate import ClipCollator
from worldmodel.diffusion.prediction import takes_warp
from worldmodel.training.preemption import PreemptionCheckpoint
from worldmodel.viz import contact_sheet, save_png, side_by_side, to_uint8, write_video


class _EveryNSteps(pl.Callback):
    """Runs `fire` every n optimiser steps and once when training ends."""

    def __init__(self, every_n_train_steps: int) -> None:
        self.every = every_n_train_steps
        self._last_step = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every > 0 and step > 0 and step % self.every == 0 and step != self._last_step:
            self._last_step = step
            self.fire(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_step != self._last_step and not trainer.fast_dev_run:
            self._last_step = trainer.global_step
            self.fire(trainer, pl_module)

    def fire(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise NotImplementedError


class LastStepCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint whose `last.ckpt` also holds the final step when a run ends between two
    checkpoint steps (max_steps not a multiple of every_n_train_steps, or trainer.max_time), as the export does.

    Lightning writes last.ckpt at train end only when it never wrote one. A preempted (or Ctrl-C'd) run is left
    alone: its PreemptionCheckpoint has just written last.ckpt at the end of that step, which resumes exactly.
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        preempted = any(isinstance(c, PreemptionCheckpoint) and c.stopped_at_step is not None
                        for c in trainer.callbacks)
        if preempted or trainer.fast_dev_run:
            # Preempted: Lightning's own train-end save would replace it with the state after the loop closed its
            # epoch (epoch + 1, validation run), from which a resume starts the next epoch and leaves the order.
            # A debug run writes no checkpoint: a later ckpt_path=last must not resume from its one batch.
            return
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            return
        super().on_train_end(trainer, pl_module)


class ExportPretrained(_EveryNSteps):
    """Keeps `<run_dir>/export` a loadable world model (EMA weights + run config).

    Under FSDP every rank takes part in gathering the full weights onto rank 0 (CPU), which then
    rebuilds the network from the run config and writes the same single folder as any other run.
    """

    def __init__(self, dirpath: str, every_n_train_steps: int = 500) -> None:
        super().__init__(every_n_train_steps)
        self.dirpath = Path(dirpath)

    def fire(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if isinstance(trainer.strategy, FSDPStrategy):
            state = gather_full_state_dict(trainer)  # a collective: every rank calls it
            if trainer.is_global_zero:
                model = model_from_training_state(pl_module.run_config, state, f"{type(pl_module).__name__} (FSDP)")
                save_export(self.dirpath, model, pl_module.run_config, trainer.global_step)
            return
        if trainer.is_global_zero:
            save_export(self.dirpath, pl_module.inference_model, pl_module.run_config, trainer.global_step)


def gather_full_state_dict(trainer: pl.Trainer) -> dict[str, torch.Tensor]:
    """The LightningModule's full (unsharded) state dict on rank 0, offloaded to CPU; empty on other ranks."""
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    # CPU processes (gloo) keep the gathered weights where they are: torch's offload copy of a CPU tensor
    # releases memory the state dict still points at (a segmentation fault in the clone that follows).
    on_gpu = trainer.strategy.root_device.type != "cpu"
    config = FullStateDictConfig(offload_to_cpu=on_gpu, rank0_only=True)
    with FSDP.state_dict_type(trainer.strategy.model, StateDictType.FULL_STATE_DICT, config):
        return trainer.strategy.model.state_dict()


class SampleVideos(_EveryNSteps):
    """Samples a few validation clips from their first frames and writes ground truth | generated."""

    def __init__(self, dirpath: str, every_n_train_steps: int = 1000, num_clips: int = 2,
                 num_reference: int = 1, seed: int = 0) -> None:
        super().__init__(every_n_train_steps)
        self.dirpath = Path(dirpath)
        self.num_clips = num_clips
        self.num_reference = num_reference
        self.seed = seed

    @rank_zero_only
    @torch.no_grad()
    def fire(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if isinstance(trainer.strategy, FSDPStrategy):
            # A sharded network runs only inside all ranks' collective forward; sample from the export instead.
            rank_zero_warn("SampleVideos does not sample under FSDP; roll out <run_dir>/export with worldmodel-rollout",
                           category=UserWarning)
            return
        dataset = getattr(trainer.datamodule, "val_set", None) if trainer.datamodule else None
        if dataset is None or len(dataset) == 0:
            return
        clips = [dataset[i] for i in range(min(self.num_clips, len(dataset)))]
        batch = ClipCollator((self.num_reference,))(clips)
        latents = pl_module.batch_latents(batch)  # (B, T, V, C, h, w)
        values, valid = pack_actions(batch["actions"])
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        # A warp-conditioned model samples with each clip's warp, as its rollouts do (all clips or none).
        warp = None
        if takes_warp(pl_module.inference_model):
            prior, has_prior = pl_module.warp_prior(latents, batch)
            warp = prior[:, self.num_reference:] if prior is not None and bool(has_prior.all()) else None
        generated = pl_module.sampler.sample(
            pl_module.inference_model, latents[:, : self.num_reference], latents.shape[1],
            values.to(pl_module.device), valid.to(pl_module.device), generator=generator, warp=warp)
        video = to_uint8(pl_module.codec.decode_video(generated).float().cpu())  # (B, T, V, H, W, 3)
        # A latent cache has no frames: its decoded latents are the ground truth to show.
        truth = (batch["frames"].numpy() if "frames" in batch
                 else to_uint8(pl_module.codec.decode_video(latents).float().cpu()))
        step = trainer.global_step
        self.dirpath.mkdir(parents=True, exist_ok=True)
        rows, labels = [], []
        for i in range(len(clips)):
            # Views side by side in one strip per clip keeps a multi-camera sample in one file.
            gen_strip = np.concatenate(list(video[i].transpose(1, 0, 2, 3, 4)), axis=2)
            gt_strip = np.concatenate(list(truth[i].transpose(1, 0, 2, 3, 4)), axis=2)
            panel = side_by_side([gt_strip, gen_strip], ["ground truth", "generated"])
            write_video(self.dirpath / f"step{step:07d}_clip{i}.mp4", panel, fps=float(clips[i]["meta"]["fps"]))
            rows += [gt_strip, gen_strip]
            labels += [f"clip {i} truth", f"clip {i} generated"]
        sheet = contact_sheet(rows, labels)
        save_png(self.dirpath / f"step{step:07d}.png", sheet)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", sheet, step, dataformats="HWC")
