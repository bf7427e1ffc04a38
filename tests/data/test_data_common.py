"""Shared reader pieces: fps resampling, clip windows, image decoding and resizing, skip accounting."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worldmodel.data.errors import CorruptFileError, DatasetError, SkipLog
from worldmodel.data.images import decode_image, resize_crop, resize_crop_intrinsics
from worldmodel.data.timeline import clip_starts, resample_indices


def test_12hz_camera_resampled_to_10hz_picks_the_nearest_frames() -> None:
    t = np.arange(0, 2.0001, 1 / 12)  # nuScenes-like 12 Hz sweeps
    idx = resample_indices(t, 10.0)
    assert len(idx) == 21
    assert np.all(np.abs(t[idx] - np.arange(21) / 10) <= 1 / 24 + 1e-9)
    assert np.all(np.diff(idx) >= 1)


def test_a_gap_in_the_recording_ends_the_grid() -> None:
    t = np.concatenate([np.arange(0, 1.0, 0.1), np.arange(2.0, 3.0, 0.1)])
    assert len(resample_indices(t, 10.0)) == 10


def test_bad_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="increasing"):
        resample_indices(np.array([0.0, 0.2, 0.1]), 10.0)


def test_clip_starts() -> None:
    assert clip_starts(30, 25).tolist() == [0]
    assert clip_starts(30, 10, stride=5).tolist() == [0, 5, 10, 15, 20]
    assert clip_starts(5, 8).size == 0


def test_decode_and_corrupt_image(tmp_path: Path) -> None:
    image = (np.arange(20 * 30 * 3) % 251).astype(np.uint8).reshape(20, 30, 3)
    path = tmp_path / "a.png"
    Image.fromarray(image).save(path)
    assert np.array_equal(decode_image(path), image)
    Image.fromarray(image).save(tmp_path / "b.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "b.jpg").read_bytes()[:60])
    with pytest.raises(CorruptFileError, match="cut.jpg"):
        decode_image(tmp_path / "cut.jpg")


def test_resize_crop_keeps_a_world_point_on_its_pixel() -> None:
    k = np.array([[100.0, 0, 80], [0, 100.0, 45], [0, 0, 1]])
    src, dst = (90, 160), (36, 48)
    k2 = resize_crop_intrinsics(k, src, dst)
    point = np.array([0.3, -0.1, 2.0])
    u, v, _ = (k @ point) / point[2]
    u2, v2, _ = (k2 @ point) / point[2]
    scale = max(36 / 90, 48 / 160)
    top, left = (round(90 * scale) - 36) // 2, (round(160 * scale) - 48) // 2
    assert u2 == pytest.approx(u * scale - left, abs=1e-4) and v2 == pytest.approx(v * scale - top, abs=1e-4)
    assert resize_crop(np.zeros((90, 160, 3), np.uint8), dst).shape == (36, 48, 3)


def test_skip_log_counts_and_strict_raises() -> None:
    log = SkipLog()
    for i in range(5):
        log.skip("missing camera CAM_BACK", f"scene-{i}")
    log.skip("too short", "scene-9")
    assert log.total == 6 and log.counts["missing camera CAM_BACK"] == 5
    assert "scene-0" in log.summary()
    with pytest.raises(DatasetError, match="scene-1.*strict"):
        SkipLog(strict=True).skip("too short", "scene-1")
