"""A missing, damaged or foreign checkpoint fails with a message that names it and the fix."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from worldmodel.checkpoint import CheckpointError, load_world_model, save_export
from worldmodel.files import FileWriteError


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_world_model(tmp_path / "nope")


def test_folder_that_is_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a worldmodel export"):
        load_world_model(tmp_path)


def test_checkpoint_of_another_model(tmp_path: Path) -> None:
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="another model"):
        load_world_model(path)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "cut.ckpt"
    torch.save({"worldmodel": {}, "state_dict": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot read"):
        load_world_model(path)


def test_failed_export_keeps_the_previous_one(trained_run, tmp_path: Path) -> None:
    from worldmodel.checkpoint import load_world_model as load

    loaded = load(trained_run.export_dir)
    target = tmp_path / "export"
    save_export(target, loaded.model, loaded.config, step=7)
    before = {p.name: p.read_bytes() for p in target.rglob("*") if p.is_file()}

    class Broken(torch.nn.Module):
        def save_pretrained(self, *args, **kwargs):
            raise OSError("disk full")

    # The error names the export folder being written and keeps the writer's own cause.
    with pytest.raises(FileWriteError, match=rf"writing {re.escape(str(target))} failed \(OSError: disk full\)"):
        save_export(target, Broken(), loaded.config, step=8)
    after = {p.name: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"], "a staging folder was left behind"
