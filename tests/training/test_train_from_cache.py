"""Training reads a latent cache written by worldmodel's cache writer, skipping the codec."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TINY_RUN
from tests.training.one_step import check_one_step, record_training
from worldmodel.codecs import DCTCodec
from worldmodel.config import compose_config
from worldmodel.data.cache import write_latent_cache
from worldmodel.data.synthetic import SyntheticDriving
from worldmodel.training.train import train


def test_fast_dev_run_on_a_latent_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for split in ("train", "val"):
        clips = SyntheticDriving(num_clips=4, num_frames=4, size=(32, 64), split=split)
        write_latent_cache(clips, DCTCodec(), tmp_path / "latents" / split, shard_size=2,
                           progress=False)
    overrides = [o for o in TINY_RUN if not o.startswith(("data.train.", "data.val."))]
    cfg = compose_config("train", [*overrides, "~experiment", "data=latent_cache", "data.num_workers=0",
                                   f"data.train.cache_dir={tmp_path}/latents/train",
                                   f"data.val.cache_dir={tmp_path}/latents/val",
                                   "debug=fast_dev_run", f"run_dir={tmp_path}/run"])
    recording = record_training(monkeypatch)
    result = train(cfg)
    # The step trained on the cache's latents as they are (no frames to encode) ...
    step = next(c for c in recording.calls if c.trained_model)
    assert "latents" in step.batch and "frames" not in step.batch
    # ... and is one exact step: its loss recomputed, one AdamW step, one EMA update (tests/training/one_step.py).
    check_one_step(recording, result, cfg)
