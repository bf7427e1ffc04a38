"""`prepare` end to end on a fabricated video folder, and `worldmodel-prepare` on a wrong root."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


from tests.data.test_videos import SIZE, write_numbered_video
from worldmodel.config import compose_config
from worldmodel.data.cache import LatentCacheClips
from worldmodel.data.prepare import format_summary, prepare
from worldmodel.data.videos import VideoFolderClips

BIN = Path(sys.executable).parent


def test_prepare_writes_index_summary_and_cache(tmp_path: Path) -> None:
    root = tmp_path / "dashcam"
    write_numbered_video(root / "day1" / "a.mp4", 60, fps=30)
    write_numbered_video(root / "day2" / "b.mp4", 40, fps=10)
    (root / "day2" / "cut.mp4").write_bytes(b"\x00" * 100)
    out = tmp_path / "prepared"
    cfg = compose_config("prepare", ["dataset=videos", f"root={root}", f"out={out}", "num_frames=5",
                                     f"size=[{SIZE[0]},{SIZE[1]}]", "cache=true", "cache_options.shard_size=3",
                                     "cache_options.dtype=float32", "progress=false", "codec.factor=4"])
    result = prepare(cfg)
    assert result.index_path == out / "index" / "all.json"
    index = json.loads(result.index_path.read_text())
    assert len(index) == 12  # 2 s of a.mp4 and 4 s of b.mp4 at 10 Hz, 5-frame clips
    reread = VideoFolderClips(root, num_frames=5, size=SIZE, index=result.index_path)
    assert len(reread) == 12
    summary = json.loads((out / "summary.json").read_text())
    split = summary["splits"]["all"]
    assert summary["dataset"] == "videos" and split["clips"] == 12 and split["scenes"] == 2
    assert split["frames"] == 60 and split["skipped"]["unreadable video"]["count"] == 1
    assert split["cache"]["latent_shape"] == [5, 1, 48, 8, 12]
    cache = LatentCacheClips(out / "latents" / "all")
    assert len(cache) == 12 and cache.manifest["codec"]["_target_"] == "worldmodel.codecs.PixelCodec"
    assert cache[7]["latents"].shape == (5, 1, 48, 8, 12)
    table = format_summary(result)
    assert "videos" in table and "unreadable video" in table and "cut.mp4" in table
    again = prepare(cfg)  # finished shards are kept
    assert again.summary["splits"]["all"]["cache"]["shards_written"] == 0


def test_cli_with_a_wrong_root_says_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    out = subprocess.run([str(BIN / "worldmodel-prepare"), "dataset=videos", f"root={missing}", f"out={tmp_path}/o",
                          f"run_dir={tmp_path}/run"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "Traceback" not in out.stderr
    assert lines[0].startswith("worldmodel-prepare:")
