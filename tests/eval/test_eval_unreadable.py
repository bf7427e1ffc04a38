"""`evaluate` on a fabricated nuScenes val set with one truncated JPEG: the clip is skipped and named, never replaced.

Before, the reader replaced clip 0 by clip 1, which was then scored twice while metrics.json listed clips [0, 1].
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.data.nuscenes_fixture import FakeScene, write_nuscenes
from worldmodel.config import compose_config
from worldmodel.data.nuscenes import NuScenesClips
from worldmodel.eval.psnr import psnr
from worldmodel.eval.run import evaluate
from worldmodel.eval.unreadable import UnreadableClipError, skipped_line

FRAMES = 8  # one chunk of the tiny export: 1 reference frame, 7 predicted
SIZE = (32, 64)  # the tiny export's frame size


def cut_front_image(root: Path, clip: int) -> tuple[Path, bytes]:
    """Truncate (to 60 %) the CAM_FRONT image at tick 3 of `clip`; returns its path and its whole bytes."""
    reader = NuScenesClips(root, split="val", num_frames=FRAMES, fps=10.0, views="front", size=SIZE)
    bad = root / reader.build_index()[clip]["files"][3][0]
    whole = bad.read_bytes()
    bad.write_bytes(whole[: int(len(whole) * 0.6)])
    return bad, whole


@pytest.fixture()
def nuscenes_root(tmp_path: Path) -> Path:
    """Two 2-second val scenes: two 8-frame clips each."""
    root = tmp_path / "nuscenes"
    write_nuscenes(root, [FakeScene("scene-0003", seconds=2.0), FakeScene("scene-0012", seconds=2.0)])
    assert len(NuScenesClips(root, split="val", num_frames=FRAMES, fps=10.0, views="front", size=SIZE)) == 4
    return root


def _cfg(export: Path, run_dir: Path, root: Path, *overrides: str):
    return compose_config("eval", [
        f"checkpoint={export}", f"run_dir={run_dir}", "progress=false", "protocol=nuscenes_single",
        f"protocol.dataset.root={root}", f"protocol.num_frames={FRAMES}", "protocol.use_actions=false",
        "protocol.metrics=[psnr]", "write_videos=0", "batch_size=2", *overrides])


def _copy_last_frame_psnr(root: Path, clips: list[int]) -> list[float]:
    """The copy-last-frame PSNR curve of exactly these clips, read straight from the reader."""
    reader = NuScenesClips(root, split="val", num_frames=FRAMES, fps=10.0, views="front", size=SIZE)
    curves = []
    for i in clips:
        truth = np.asarray(reader.read_clip(i)["frames"])
        curves.append(psnr(np.repeat(truth[:1], FRAMES - 1, axis=0), truth[1:]).mean(axis=1))
    return np.mean(curves, axis=0).tolist()


def test_truncated_jpeg_skips_its_clip_and_scores_only_the_readable_ones(tiny_eval_export, nuscenes_root,
                                                                         tmp_path) -> None:
    root = nuscenes_root
    bad, whole = cut_front_image(root, 0)
    run = tmp_path / "run"
    result = evaluate(_cfg(tiny_eval_export, run, root))
    m = result.metrics
    resolved = m["protocol"]["resolved"]
    assert resolved["clips_selected"] == 4 and resolved["clip_indices"] == [1, 2, 3]
    assert m["videos"] == resolved["videos"] == 3 and m["clips_skipped"] == 1
    [skipped] = resolved["skipped_clips"]
    assert (skipped["clip"], skipped["position"], skipped["file"]) == (0, 0, str(bad))
    assert "truncated" in skipped["reason"].lower()
    # The numbers are those of clips 1-3, each once (clip 1 in place of clip 0 would shift them).
    assert np.allclose(m["psnr_curves"]["copy_last_frame_per_frame"], _copy_last_frame_psnr(root, [1, 2, 3]),
                       atol=1e-3)
    assert json.loads((run / "metrics.json").read_text())["protocol"]["resolved"]["skipped_clips"] == [skipped]
    line = skipped_line(resolved)
    assert line.startswith("skipped 1 of 4 selected clips as unreadable") and str(bad) in line
    assert bad.name in result.report.read_text()

    # Resumed with the file still cut: the same record. Repaired: the clip is read now and scored.
    again = evaluate(_cfg(tiny_eval_export, run, root)).metrics["protocol"]["resolved"]
    assert again["clip_indices"] == [1, 2, 3] and again["skipped_clips"] == [skipped]
    bad.write_bytes(whole)
    repaired = evaluate(_cfg(tiny_eval_export, run, root)).metrics
    assert repaired["protocol"]["resolved"]["clip_indices"] == [0, 1, 2, 3]
    assert repaired["clips_skipped"] == 0 and repaired["protocol"]["resolved"]["skipped_clips"] == []
    assert np.allclose(repaired["psnr_curves"]["copy_last_frame_per_frame"],
                       _copy_last_frame_psnr(root, [0, 1, 2, 3]), atol=1e-3)


def test_unreadable_clips_error_stops_naming_the_clip_and_file(tiny_eval_export, nuscenes_root, tmp_path) -> None:
    root = nuscenes_root
    bad, _ = cut_front_image(root, 0)
    with pytest.raises(UnreadableClipError, match=rf"clip 0 cannot be read: {re.escape(str(bad))}"):
        evaluate(_cfg(tiny_eval_export, tmp_path / "run", root, "unreadable_clips=error"))
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_shard_learns_the_other_shards_skips_when_it_merges(tiny_eval_export, nuscenes_root, tmp_path) -> None:
    root = nuscenes_root
    bad, _ = cut_front_image(root, 2)  # position 2: shard 0's, never read by shard 1
    first = evaluate(_cfg(tiny_eval_export, tmp_path / "run", root, "shard.index=0", "shard.count=2"))
    assert first.report is None
    merged = evaluate(_cfg(tiny_eval_export, tmp_path / "run", root, "shard.index=1", "shard.count=2")).metrics
    resolved = merged["protocol"]["resolved"]
    assert resolved["clip_indices"] == [0, 1, 3] and merged["videos"] == 3
    assert [(s["clip"], s["file"]) for s in resolved["skipped_clips"]] == [(2, str(bad))]
    assert np.allclose(merged["psnr_curves"]["copy_last_frame_per_frame"], _copy_last_frame_psnr(root, [0, 1, 3]),
                       atol=1e-3)
