"""Batching of reader clips: frames to one tensor, actions collated, meta kept per clip."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate


class ClipCollator:
    """Collates clip dicts and draws the number of clean reference frames of each sample.

    The draw lives here rather than in the model so that every data loader worker uses
    torch's per-worker seed, and a run with the same seed sees the same choices.
    """

    def __init__(self, reference_choices: Sequence[int] = (0, 1, 2, 3),
                 reference_weights: Sequence[float] | None = None) -> None:
        if not reference_choices:
            raise ValueError("reference_frames.choices must name at least one count, e.g. [1]")
        weights = reference_weights if reference_weights is not None else [1.0] * len(reference_choices)
        if len(weights) != len(reference_choices):
            raise ValueError(
                f"reference_frames.weights has {len(weights)} entries but choices has "
                f"{len(reference_choices)}: give one weight per choice")
        if min(reference_choices) < 0:
            raise ValueError(f"reference frame counts must be >= 0, got {list(reference_choices)}")
        self.choices = torch.as_tensor(list(reference_choices), dtype=torch.long)
        self.weights = torch.as_tensor(list(weights), dtype=torch.float64)

    def __call__(self, clips: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = {
            "actions": default_collate([c["actions"] for c in clips]),
            "meta": [c["meta"] for c in clips],
        }
        # Readers give uint8 frames; a latent cache gives codec latents (then training skips the codec).
        if "latents" in clips[0]:
            batch["latents"] = torch.stack([torch.as_tensor(c["latents"]) for c in clips])  # (B, T, V, C, h, w)
        else:
            batch["frames"] = torch.from_numpy(np.stack([np.asarray(c["frames"]) for c in clips]))  # (B, T, V, H, W, 3)
        num_frames = (batch.get("latents", batch.get("frames"))).shape[1]
        pick = self._draw(clips)
        batch["num_reference"] = self.choices[pick].clamp(max=num_frames - 1)  # (B,) keep >= 1 frame to predict
        # Training loaders key each sample (its draws then follow it across batch sizes, ranks and resumes)
        # and count the unreadable clips that were replaced by others on the way to this batch.
        for key in ("sample_key", "load_failures"):
            if all(key in c for c in clips):
                batch[key] = torch.as_tensor([int(c[key]) for c in clips], dtype=torch.long)  # (B,)
        return batch

    def _draw(self, clips: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """Index into `choices` per clip: from the clip's own key when it has one, else torch's generator."""
        if not all("sample_key" in c for c in clips):
            return torch.multinomial(self.weights, len(clips), replacement=True)
        p = (self.weights / self.weights.sum()).numpy()
        return torch.as_tensor([int(np.random.default_rng([int(c["sample_key"]), 0]).choice(len(p), p=p))
                                for c in clips], dtype=torch.long)
