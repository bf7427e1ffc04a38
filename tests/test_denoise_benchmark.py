"""benchmarks/denoise_by_tau runs on a trained export and prints one finite PSNR per diffusion time."""
from __future__ import annotations

import re
import sys

import pytest

from benchmarks import denoise_by_tau


def test_denoise_table_on_a_trained_export(trained_run, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["denoise_by_tau", str(trained_run.export_dir), "--clips", "2"])
    denoise_by_tau.main()
    rows = re.findall(r"^\| (copy the reference|[0-9.]+) \| (-?[0-9.]+) \|$", capsys.readouterr().out, re.M)
    assert [name for name, _ in rows] == ["copy the reference", *map(str, denoise_by_tau.TAUS)]
    assert all(0.0 < float(value) < 100.0 for _, value in rows)
