"""Batch-mode rollout reads each held-out clip as itself: a clip with a truncated JPEG is named, never replaced."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.data.nuscenes_fixture import FakeScene, write_nuscenes
from worldmodel.checkpoint import load_world_model
from worldmodel.config import compose_config
from worldmodel.data.errors import DatasetError
from worldmodel.data.nuscenes import NuScenesClips
from worldmodel.rollout.run import _held_out_clips

FRAMES, SIZE = 8, (32, 64)


@pytest.fixture()
def nuscenes_export(tiny_export, tmp_path: Path):
    """The tiny export, as if it had been trained on a fabricated nuScenes set (its held-out reader)."""
    root = tmp_path / "nuscenes"
    write_nuscenes(root, [FakeScene("scene-0003", seconds=2.0), FakeScene("scene-0012", seconds=2.0)])
    loaded = load_world_model(tiny_export)
    reader = {"_target_": "worldmodel.data.nuscenes.NuScenesClips", "root": str(root), "split": "val",
              "num_frames": FRAMES, "fps": 10.0, "views": "front", "size": list(SIZE)}
    config = {**loaded.config, "data": {**loaded.config["data"], "val": reader}}
    return dataclasses.replace(loaded, config=config), root


def test_an_unreadable_clip_is_named_not_replaced_by_the_next(nuscenes_export) -> None:
    loaded, root = nuscenes_export
    reader = NuScenesClips(root, split="val", num_frames=FRAMES, fps=10.0, views="front", size=SIZE)
    cfg = compose_config("rollout", ["checkpoint=x", "clips.split=val", "clips.first_clip=0", "clips.num_clips=2"])
    before = _held_out_clips(loaded, cfg, FRAMES)
    assert [c["meta"]["scene"] for c in before] == [reader.read_clip(i)["meta"]["scene"] for i in (0, 1)]
    assert not np.array_equal(before[0]["frames"], before[1]["frames"])

    bad = root / reader.build_index()[1]["files"][3][0]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size * 6 // 10])
    with pytest.raises(DatasetError) as refused:
        _held_out_clips(loaded, cfg, FRAMES)
    assert str(refused.value).startswith(f"clip 1 of the val split cannot be read ({bad}: ")
    assert "clips.first_clip=" in str(refused.value)
