"""Video folders: frame order and timestamps, fps resampling, seeking, frame folders, corrupt files, indexes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worldmodel.data.errors import CorruptFileError, DatasetError
from worldmodel.data.videos import VideoFolderClips, decode_video_frames, probe_video
from worldmodel.viz.video import write_video

SIZE = (32, 48)


def numbered_frame(k: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A flat frame whose colour encodes k (0-255): red the low nibble, green the high one."""
    frame = np.full((*size, 3), 128, np.uint8)
    frame[..., 0] = (k % 16) * 16 + 8
    frame[..., 1] = (k // 16) * 16 + 8
    return frame


def read_number(frame: np.ndarray) -> int:
    """The k of `numbered_frame`, robust to codec noise."""
    f = frame.astype(np.float64)
    return int(round((f[..., 0].mean() - 8) / 16) + 16 * round((f[..., 1].mean() - 8) / 16))


def write_numbered_video(path: Path, count: int, fps: float, size: tuple[int, int] = SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, np.stack([numbered_frame(k, size) for k in range(count)]), fps=fps)


def write_numbered_folder(folder: Path, numbers: range, suffix: str = ".png", size: tuple[int, int] = SIZE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in numbers:
        Image.fromarray(numbered_frame(k, size)).save(folder / f"{k:09d}{suffix}", quality=95)
    return folder


def clip_numbers(clip: dict) -> list[int]:
    return [read_number(f[0]) for f in clip["frames"]]


def test_30fps_video_read_at_10fps_picks_every_third_frame(tmp_path: Path) -> None:
    write_numbered_video(tmp_path / "drive.mp4", 90, fps=30)
    ds = VideoFolderClips(tmp_path, num_frames=5, size=SIZE)
    assert len(ds) == 6  # 30 ticks at 10 Hz, clips of 5 without overlap
    clip = ds[1]
    assert clip_numbers(clip) == [15, 18, 21, 24, 27]
    assert clip["frames"].shape == (5, 1, *SIZE, 3) and clip["frames"].dtype == np.uint8
    meta = clip["meta"]
    np.testing.assert_allclose(meta["timestamps"], [0.5, 0.6, 0.7, 0.8, 0.9])
    assert meta["dataset"] == "videos" and meta["scene"] == "drive.mp4" and meta["fps"] == 10.0
    assert meta["cameras"] == ["CAM_FRONT"] and "intrinsics" not in meta
    assert not any(clip["actions"]["valid"].values())
    assert [clip_numbers(ds[i])[0] for i in range(len(ds))] == [0, 15, 30, 45, 60, 75]


def test_stride_overlaps_and_resize(tmp_path: Path) -> None:
    write_numbered_video(tmp_path / "a.mp4", 40, fps=20, size=(40, 60))
    ds = VideoFolderClips(tmp_path, num_frames=4, fps=5.0, size=(20, 24), stride=2)
    assert clip_numbers(ds[0]) == [0, 4, 8, 12] and clip_numbers(ds[1]) == [8, 12, 16, 20]
    assert ds[0]["frames"].shape == (4, 1, 20, 24, 3)


def test_decoding_seeks_to_the_wanted_range(tmp_path: Path) -> None:
    path = write_numbered_video(tmp_path / "a.mp4", 120, fps=30)
    info = probe_video(path)
    assert (info.fps, info.num_frames, info.size) == (30.0, 120, SIZE)
    frames = decode_video_frames(path, [61, 64, 100], info)
    assert [read_number(f) for f in frames] == [61, 64, 100]
    with pytest.raises(CorruptFileError, match="ended"):
        decode_video_frames(path, [118, 130], info)


def test_frame_folder_counts_as_one_video(tmp_path: Path) -> None:
    write_numbered_folder(tmp_path / "trip" / "cam", range(20))
    ds = VideoFolderClips(tmp_path, num_frames=5, fps=5.0, size=SIZE, frame_folder_fps=10.0)
    assert len(ds) == 2 and ds[0]["meta"]["scene"] == "trip/cam"
    assert clip_numbers(ds[0]) == [0, 2, 4, 6, 8]
    np.testing.assert_allclose(ds[1]["meta"]["timestamps"], [1.0, 1.2, 1.4, 1.6, 1.8])


def test_slow_source_and_short_video_are_skipped_with_reasons(tmp_path: Path) -> None:
    write_numbered_video(tmp_path / "slow.mp4", 20, fps=5)
    write_numbered_video(tmp_path / "short.mp4", 6, fps=10)
    write_numbered_video(tmp_path / "ok.mp4", 10, fps=10)
    ds = VideoFolderClips(tmp_path, num_frames=8, size=SIZE)
    assert len(ds) == 1
    reasons = ds.describe()["skipped"]
    assert any("slower" in r for r in reasons) and any("shorter" in r for r in reasons)


def test_corrupt_video_is_skipped_and_counted_or_raises_when_strict(tmp_path: Path) -> None:
    write_numbered_video(tmp_path / "good.mp4", 30, fps=10)
    bad = tmp_path / "sub" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00not a video" * 50)
    ds = VideoFolderClips(tmp_path, num_frames=10, size=SIZE)
    assert len(ds) == 3 and ds.skips.counts["unreadable video"] == 1
    assert str(bad) in ds.skips.examples["unreadable video"][0]
    assert ds.describe()["skipped_total"] == 1
    with pytest.raises(CorruptFileError, match="broken.mp4"):
        VideoFolderClips(tmp_path, num_frames=10, size=SIZE, strict=True)


def test_wrong_root_and_views_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nope'}.*not a directory"):
        VideoFolderClips(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no video files"):
        VideoFolderClips(tmp_path)
    write_numbered_video(tmp_path / "a.mp4", 30, fps=10)
    with pytest.raises(DatasetError, match="split folder"):
        VideoFolderClips(tmp_path, split="train")
    with pytest.raises(ValueError, match="CAM_FRONT"):
        VideoFolderClips(tmp_path, views=["CAM_BACK"])


def test_split_subfolder_and_index_round_trip(tmp_path: Path) -> None:
    write_numbered_video(tmp_path / "train" / "a.mp4", 60, fps=10)
    write_numbered_video(tmp_path / "val" / "b.mp4", 30, fps=10)
    ds = VideoFolderClips(tmp_path, split="train", num_frames=10, size=SIZE)
    assert {e["scene"] for e in ds.entries} == {"train/a.mp4"} and len(ds) == 6
    index = tmp_path / "index.json"
    index.write_text(json.dumps(ds.build_index()))
    again = VideoFolderClips(tmp_path, split="train", num_frames=10, size=SIZE, index=index)
    assert again.entries == ds.entries and clip_numbers(again[5]) == clip_numbers(ds[5])
    with pytest.raises(DatasetError, match="rebuild"):
        VideoFolderClips(tmp_path, num_frames=5, size=SIZE, index=index)
