"""`prepare` checks every file it indexes (verify=header | full): a damaged file leaves out its clips, named with
the reason, the run goes on, and the counts printed and returned are those of the index written."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from tests.data.nuscenes_fixture import FakeScene, write_nuscenes
from tests.data.waymo_fixture import START_US, FakeSegment, write_v1_segment
from worldmodel.config import compose_config
from worldmodel.data.errors import DatasetError
from worldmodel.data.nuscenes import NuScenesClips
from worldmodel.data.prepare import PrepareResult, format_summary, prepare
from worldmodel.data.verify import DAMAGED_IMAGE, DAMAGED_VIDEO

SIZE = (32, 48)  # (h, w) of the written videos and of the clips
FRAMES = 5


def write_faststart_mp4(path: Path, count: int = 60, seed: int = 0) -> Path:
    """A real H.264 mp4 of noise frames (incompressible, so the file has some size) with its moov box first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(seed).integers(0, 255, (count, *SIZE, 3), dtype=np.uint8)
    writer = imageio_ffmpeg.write_frames(str(path), (SIZE[1], SIZE[0]), fps=10, codec="libx264",
                                         pix_fmt_out="yuv420p", macro_block_size=1,
                                         output_params=["-movflags", "+faststart"])
    writer.send(None)
    for frame in frames:
        writer.send(frame.tobytes())
    writer.close()
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and data.index(b"moov") < data.index(b"mdat"), "moov must come first"
    return path


def _prepare(dataset: str, root: Path, out: Path, *overrides: str) -> PrepareResult:
    return prepare(compose_config("prepare", [f"dataset={dataset}", f"root={root}", f"out={out}", "progress=false",
                                              *overrides]))


def _printed_row(result: PrepareResult) -> dict[str, int]:
    """The clips and skipped columns of the split's row of the printed table."""
    header, _, row = format_summary(result).splitlines()[:3]
    values = dict(zip(header.split(), row.split()))
    return {"clips": int(values["clips"]), "skipped": int(values["skipped"])}


def _assert_counts_are_the_index(result: PrepareResult) -> list[dict]:
    index = json.loads(result.index_path.read_text())
    split = result.summary["splits"][result.split]
    assert split["clips"] == len(index) == _printed_row(result)["clips"]
    assert _printed_row(result)["skipped"] == split["skipped_total"] == sum(
        r["count"] for r in split["skipped"].values())
    return index


# ---------------------------------------------------------------------------------------------- videos
def test_truncated_faststart_mp4_is_skipped_with_its_reason_and_the_run_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "dashcam"
    write_faststart_mp4(root / "good.mp4")
    cut = write_faststart_mp4(root / "cut.mp4", seed=1)
    data = cut.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])  # the header still promises 60 frames
    for mode in ("header", "full"):
        result = _prepare("videos", root, tmp_path / mode, f"num_frames={FRAMES}", f"size=[{SIZE[0]},{SIZE[1]}]",
                          f"verify={mode}")
        index = _assert_counts_are_the_index(result)
        assert len(index) == 12 and {e["path"] for e in index} == {"good.mp4"}  # 6 s at 10 Hz, 5-frame clips
        split = result.summary["splits"]["all"]
        [example] = split["skipped"][DAMAGED_VIDEO]["examples"]
        assert example.startswith(str(cut)) and "truncated" in example
        assert split["verify"] == {"mode": mode, "checked": 2, "damaged": 1, "clips_left_out": 12, "unit": "files"}
        assert f"verify={mode} (all): 2 files checked, 1 damaged, clips left out: 12" in format_summary(result)


def test_header_mode_misses_damage_inside_an_intact_size_file_and_full_mode_catches_it(tmp_path: Path) -> None:
    root = tmp_path / "dashcam"
    video = write_faststart_mp4(root / "garbled.mp4")
    data = bytearray(video.read_bytes())
    middle = int(len(data) * 0.6)
    data[middle : middle + 2000] = b"\xff" * 2000  # same size, every box intact, frames undecodable
    video.write_bytes(bytes(data))
    options = (f"num_frames={FRAMES}", f"size=[{SIZE[0]},{SIZE[1]}]")
    header = _prepare("videos", root, tmp_path / "header", *options, "verify=header")
    assert len(_assert_counts_are_the_index(header)) == 12 and header.summary["splits"]["all"]["skipped_total"] == 0
    with pytest.raises(DatasetError, match="no clips found"):  # its only video is left out
        _prepare("videos", root, tmp_path / "full", *options, "verify=full")


def test_header_mode_keeps_a_jpeg_with_a_trailer_and_drops_a_truncated_one(tmp_path: Path) -> None:
    folder = tmp_path / "frames" / "drive"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(10):
        Image.fromarray(rng.integers(0, 255, (*SIZE, 3), dtype=np.uint8)).save(folder / f"{k:06d}.jpg", quality=95)
    trailer = folder / "000002.jpg"
    trailer.write_bytes(trailer.read_bytes() + b"vendor trailer after the end marker")
    cut = folder / "000007.jpg"
    cut.write_bytes(cut.read_bytes()[:-300])
    result = _prepare("videos", tmp_path / "frames", tmp_path / "out", f"num_frames={FRAMES}",
                      f"size=[{SIZE[0]},{SIZE[1]}]", "verify=header")
    index = _assert_counts_are_the_index(result)
    assert [e["refs"][0] for e in index] == ["000000.jpg"]  # the clip of frames 5-9 needs the cut one
    [example] = result.summary["splits"]["all"]["skipped"][DAMAGED_IMAGE]["examples"]
    # Its header reads; the missing end marker sent it to the decoder, which found the cut.
    assert example.startswith(str(cut)) and "image file is truncated" in example


# ---------------------------------------------------------------------------------------------- nuScenes
def test_truncated_jpeg_in_a_middle_clip_is_caught_and_counts_match_the_index(tmp_path: Path) -> None:
    root = tmp_path / "nuscenes"
    write_nuscenes(root, [FakeScene("scene-0003", seconds=3.5)])
    options = ("split=val", "num_frames=8", "size=[18,32]", "views=front")
    reader = NuScenesClips(root, split="val", num_frames=8, size=(18, 32), views="front")
    assert len(reader) == 4
    bad = root / reader.build_index()[1]["files"][4][0]  # clip 1 of 0-3: neither the first nor the last
    bad.write_bytes(bad.read_bytes()[: int(bad.stat().st_size * 0.6)])
    for mode in ("full", "header"):
        result = _prepare("nuscenes", root, tmp_path / mode, *options, f"verify={mode}")
        index = _assert_counts_are_the_index(result)
        assert [e["start_tick"] for e in index] == [0, 16, 24] and len(index) == 3
        split = result.summary["splits"]["val"]
        assert split["frames"] == 3 * 8 and split["skipped"][DAMAGED_IMAGE]["count"] == 1
        assert split["skipped"][DAMAGED_IMAGE]["examples"][0].startswith(str(bad))
        assert split["verify"]["clips_left_out"] == 1 and split["verify"]["damaged"] == 1
        reread = NuScenesClips(root, split="val", num_frames=8, size=(18, 32), views="front", index=result.index_path)
        assert len(reread) == 3 and all(reread.read_clip(i)["frames"].shape[0] == 8 for i in range(3))


def test_empty_nuscenes_root_hint_is_a_command_that_works_as_printed(tmp_path: Path) -> None:
    root = tmp_path / "my nuscenes"  # a space, so the command must quote it
    root.mkdir()
    with pytest.raises(DatasetError) as info:
        _prepare("nuscenes", root, tmp_path / "o1")
    [command] = re.findall(r"`(worldmodel-prepare [^`]+)`", str(info.value))
    write_nuscenes(root, [FakeScene("scene-0061", seconds=3.0), FakeScene("scene-0103", seconds=3.0)],
                   version="v1.0-mini")
    argv = shlex.split(command)
    assert argv[:2] == ["worldmodel-prepare", "dataset=nuscenes"]
    result = prepare(compose_config("prepare", [*argv[1:], f"out={tmp_path / 'o2'}", "progress=false", "split=val",
                                                "num_frames=8", "size=[18,32]", "views=front"]))
    assert result.summary["splits"]["val"]["version"] == "v1.0-mini" and len(_assert_counts_are_the_index(result)) > 0


# ---------------------------------------------------------------------------------------------- Waymo
def test_waymo_clip_with_a_damaged_image_is_left_out_before_the_index_is_written(tmp_path: Path) -> None:
    write_v1_segment(tmp_path, "training", FakeSegment(name="bad", num_frames=18, corrupt_image=(8, "FRONT_RIGHT")))
    result = _prepare("waymo", tmp_path, tmp_path / "out", "num_frames=6", "size=[32,48]", "verify=header")
    index = _assert_counts_are_the_index(result)
    assert [(e["timestamps_us"][0] - START_US) // 100_000 for e in index] == [0, 12]  # frames 6-11 hold the damage
    split = result.summary["splits"]["training"]
    assert split["verify"] == {"mode": "header", "checked": 3, "damaged": 1, "clips_left_out": 1, "unit": "clips"}
    assert "camera FRONT_RIGHT" in split["skipped"]["damaged image or record (clip left out)"]["examples"][0]
