"""Autoregressive rollout in latent space: chunks that carry their last frames forward as references."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from worldmodel.diffusion.prediction import takes_warp

ChunkActions = tuple[torch.Tensor, torch.Tensor]  # values (B, 19), valid (B, 5)


@dataclass(frozen=True)
class ChunkSchedule:
    """Where each chunk sits in the full video: chunk i covers frames [starts[i], starts[i] + chunk_frames)."""

    chunk_frames: int
    first_reference: int
    carry_frames: int
    num_chunks: int

    def __post_init__(self) -> None:
        if not 0 < self.first_reference < self.chunk_frames:
            raise ValueError(f"first_reference must lie in [1, {self.chunk_frames - 1}], got {self.first_reference}")
        if self.num_chunks > 1 and not 0 < self.carry_frames < self.chunk_frames:
            raise ValueError(f"carry_frames must lie in [1, {self.chunk_frames - 1}], got {self.carry_frames}")
        if self.num_chunks < 1:
            raise ValueError(f"num_chunks must be >= 1, got {self.num_chunks}")

    @property
    def starts(self) -> list[int]:
        step = self.chunk_frames - self.carry_frames
        return [0] + [self.chunk_frames - self.carry_frames + i * step for i in range(self.num_chunks - 1)]

    @property
    def total_frames(self) -> int:
        return self.starts[-1] + self.chunk_frames

    @classmethod
    def for_horizon(cls, chunk_frames: int, first_reference: int, carry_frames: int,
                    total_frames: int) -> ChunkSchedule:
        """The fewest chunks whose video reaches at least `total_frames` frames."""
        step = chunk_frames - carry_frames
        extra = max(0, total_frames - chunk_frames)
        return cls(chunk_frames, first_reference, carry_frames, 1 + -(-extra // step))


class RolloutEngine:
    """Generates long videos chunk by chunk with a sampler; holds no Lightning state."""

    def __init__(self, model: nn.Module, sampler, schedule: ChunkSchedule,
                 autocast_dtype: torch.dtype | None = None, start=None) -> None:
        """`autocast_dtype` (e.g. torch.bfloat16) runs the network under autocast on the reference's device.

        `start`: None (every chunk from pure noise) or a first-guess provider such as `WarpStart`, called as
        start(refs, values, valid, chunk_frames) -> new-frame latents; sampling then begins at its `tau` (None:
        from pure noise), and a model built with `warp_condition` also takes the guess as its warp.
        """
        self.model = model
        self.sampler = sampler
        self.schedule = schedule
        self.autocast_dtype = autocast_dtype
        self.start = start

    def _check(self, reference: torch.Tensor, chunk_actions: Sequence[ChunkActions]) -> None:
        s = self.schedule
        if reference.shape[1] != s.first_reference:
            raise ValueError(f"reference has {reference.shape[1]} frames, the schedule wants {s.first_reference}")
        if len(chunk_actions) != s.num_chunks:
            raise ValueError(f"got actions for {len(chunk_actions)} chunks, the schedule has {s.num_chunks}")

    @torch.no_grad()
    def sample_chunk(self, refs: torch.Tensor, values: torch.Tensor, valid: torch.Tensor,
                     generator: torch.Generator | Sequence[torch.Generator] | None) -> torch.Tensor:
        """One chunk: refs (B, k, V, C, h, w) -> (B, chunk_frames, V, C, h, w), the k references unchanged first.

        Under the engine's autocast; `generator` is one generator or one per batch item.
        """
        s = self.schedule
        start = {}
        conditioned = takes_warp(self.model)
        # A policy's chunk may lack a path (sim); a warp-conditioned model then samples that chunk without it.
        if self.start is not None and (self.start.tau is not None or self.start.can_warp(valid)):
            guess = self.start(refs, values, valid, s.chunk_frames)
            if self.start.tau is not None:
                start.update(start=guess, start_tau=self.start.tau)
            if conditioned:
                start["warp"] = guess
        # With one generator per batch item, the sampler draws each item's noise from its own generator:
        # a scenario's video does not depend on its batch mates.
        with torch.autocast(refs.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            chunk = self.sampler.sample(self.model, refs, s.chunk_frames, values, valid, generator=generator,
                                        **start)
        return chunk.to(refs.dtype)

    @torch.no_grad()
    def stream(self, reference: torch.Tensor, chunk_actions: Sequence[ChunkActions],
               generator: torch.Generator | Sequence[torch.Generator] | None = None,
               progress: bool = False) -> Iterator[torch.Tensor]:
        """reference (B, k, V, C, h, w) -> yields each chunk's new latents (B, n_i, V, C, h, w) on the CPU.

        The first chunk yields all its frames (references included), later ones the frames after
        their `carry_frames` references, which are exactly the last latents of the chunk before.
        Only the carried frames stay on the device, so memory does not grow with the horizon.
        """
        s = self.schedule
        self._check(reference, chunk_actions)
        refs = reference
        for i in tqdm(range(s.num_chunks), desc="rollout chunks", disable=not progress, leave=False):
            values, valid = chunk_actions[i]
            chunk = self.sample_chunk(refs, values, valid, generator)
            keep_from = 0 if i == 0 else s.carry_frames
            refs = chunk[:, s.chunk_frames - s.carry_frames:]
            yield chunk[:, keep_from:].cpu()

    @torch.no_grad()
    def generate(self, reference: torch.Tensor, chunk_actions: Sequence[ChunkActions],
                 generator: torch.Generator | Sequence[torch.Generator] | None = None,
                 progress: bool = False) -> torch.Tensor:
        """reference (B, k, V, C, h, w) -> latents (B, total_frames, V, C, h, w) on the CPU (all chunks held)."""
        return torch.cat(list(self.stream(reference, chunk_actions, generator, progress)), dim=1)
