"""benchmarks/denoise_by_tau runs on a trained export and prints one finite PSNR per diffusion time."""
from __future__ import annotations

import math
import re
import sys

import numpy as np
import pytest
import torch

from benchmarks import denoise_by_tau
from worldmodel.checkpoint import load_world_model
from worldmodel.rollout.run import held_out_dataset
from worldmodel.viz.tensors import from_uint8


def test_denoise_table_on_a_trained_export(trained_run, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["denoise_by_tau", str(trained_run.export_dir), "--clips", "2"])
    denoise_by_tau.main()
    rows = re.findall(r"^\| (copy the reference|[0-9.]+) \| (-?[0-9.]+) \|$", capsys.readouterr().out, re.M)
    assert [name for name, _ in rows] == ["copy the reference", *map(str, denoise_by_tau.TAUS)]
    assert all(math.isfinite(float(value)) for _, value in rows)
    # The baseline row, recomputed: the first frame of each of the 2 held-out test clips through the codec, held for
    # every later frame, against the real frames; PSNR on [0, 1] pixels, 10 log10(1 / MSE), printed to 0.01 dB.
    loaded = load_world_model(trained_run.export_dir)
    num_frames = int(loaded.config["data"]["clip"]["num_frames"])
    dataset = held_out_dataset(loaded, "test", num_frames, needed=2)
    real = from_uint8(torch.from_numpy(np.stack([np.asarray(dataset[i]["frames"]) for i in range(2)])))
    with torch.no_grad():
        first = loaded.codec.decode_video(loaded.codec.encode_video(real[:, :1])).clamp(-1, 1)
    mse = (((first - real[:, 1:]) / 2) ** 2).mean().item()
    assert float(rows[0][1]) == pytest.approx(10 * math.log10(1.0 / mse), abs=0.006)
