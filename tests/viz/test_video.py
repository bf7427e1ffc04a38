"""Tests for worldmodel.viz.video and tensors: mp4 round trip, odd sizes, atomic output."""

import numpy as np
import pytest
import torch

from worldmodel.viz import from_uint8, read_video, save_png, to_uint8, write_video


def smooth_video(t: int, h: int, w: int) -> np.ndarray:
    """Moving colour gradients: easy for H.264, so the decoded pixels stay close."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(t):
        r = 40 + 3 * x
        g = 40 + 3 * y
        b = np.full_like(x, 60 + 10 * i)
        frames.append(np.stack([r, g, b], axis=-1))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def test_write_then_read_round_trip(tmp_path):
    video = smooth_video(6, 32, 48)
    path = write_video(tmp_path / "a.mp4", video, fps=10)
    out = read_video(path)
    assert out.dtype == np.uint8 and out.shape == video.shape
    assert np.abs(out.astype(int) - video.astype(int)).mean() < 3.0
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]


def test_odd_sizes_padded_by_one_pixel(tmp_path):
    video = smooth_video(3, 31, 45)
    out = read_video(write_video(tmp_path / "odd.mp4", video, fps=5))
    assert out.shape == (3, 32, 46, 3)
    assert np.abs(out[:, :31, :45].astype(int) - video.astype(int)).mean() < 3.0


def test_failure_mid_stream_keeps_existing_file(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, smooth_video(2, 16, 16), fps=10)
    before = path.read_bytes()

    def frames():
        yield from smooth_video(3, 16, 16)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(path, frames(), fps=10)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_failure_on_new_path_leaves_nothing(tmp_path):
    bad = [smooth_video(1, 16, 16)[0], smooth_video(1, 16, 18)[0]]
    with pytest.raises(ValueError, match="frame 1"):
        write_video(tmp_path / "new.mp4", bad, fps=10)
    assert list(tmp_path.iterdir()) == []


def test_clear_errors(tmp_path):
    with pytest.raises(TypeError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 8, 8, 3), np.float32), fps=10)
    with pytest.raises(ValueError, match=r"\(t, h, w, 3\)"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 8, 8), np.uint8), fps=10)
    with pytest.raises(FileNotFoundError, match=r"no video file at .*missing\.mp4"):
        read_video(tmp_path / "missing.mp4")
    assert list(tmp_path.iterdir()) == []


def test_save_png(tmp_path):
    from PIL import Image

    image = smooth_video(1, 9, 13)[0]
    save_png(tmp_path / "s.png", image)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "s.png")), image)


def test_tensor_uint8_round_trip():
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 7, 3), dtype=np.uint8)
    x = from_uint8(frames)
    assert x.shape == (2, 3, 3, 5, 7) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert np.array_equal(to_uint8(x), frames)
    assert to_uint8(torch.tensor([-2.0, 2.0]).view(1, 2, 1, 1).expand(3, 2, 1, 1).permute(1, 0, 2, 3))[
        :, 0, 0
    ].tolist() == [[0, 0, 0], [255, 255, 255]]
    with pytest.raises(ValueError, match=r"to_uint8 expects \(\.\.\., 3, H, W\), got \(2, 4, 4\)"):
        to_uint8(torch.zeros(2, 4, 4))
    with pytest.raises(TypeError, match="from_uint8 expects uint8 frames"):
        from_uint8(np.zeros((4, 4, 3), np.float32))
