"""Video and image files: H.264 mp4 through imageio-ffmpeg, PNG through Pillow, written atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image

from worldmodel.files import atomic_path


def _check_frame(frame: np.ndarray, index: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise TypeError(f"video frames must be uint8 (h, w, 3); frame {index} has dtype {frame.dtype} "
                        "(convert float tensors with worldmodel.viz.to_uint8)")
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"video frames must be (h, w, 3) RGB; frame {index} has shape {frame.shape}")
    return frame


def _pad_even(frame: np.ndarray) -> np.ndarray:
    # yuv420p stores chroma at half resolution, so libx264 needs even sizes; repeating the last
    # row/column keeps every original pixel where it was and adds no visible border.
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    quality: int = 8,
) -> Path:
    """Write frames uint8 (t, h, w, 3) (or an iterable of (h, w, 3)) to an H.264 mp4.

    Odd heights or widths are padded by one pixel (edge copy) to the even size yuv420p needs,
    so the file holds (h + h % 2, w + w % 2) frames. `quality` is imageio's 0-10 scale.
    Frames may stream from a generator; if it raises, the previous file at `path` is untouched
    and no partial file is left behind.
    """
    if isinstance(frames, np.ndarray) and (frames.ndim != 4 or frames.shape[-1] != 3):
        raise ValueError(f"write_video expects frames (t, h, w, 3), got shape {frames.shape}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"write_video writes H.264 .mp4 files, got {path.name}")
    count = 0
    size: tuple[int, ...] | None = None
    with atomic_path(path) as temp:
        # macro_block_size=1: otherwise imageio resizes sizes not divisible by 16.
        writer = imageio.get_writer(
            temp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=quality,
            pixelformat="yuv420p", macro_block_size=1,
        )
        try:
            for frame in frames:
                frame = _check_frame(frame, count)
                if size is None:
                    size = frame.shape
                elif frame.shape != size:
                    raise ValueError(f"frame {count} has shape {frame.shape}, earlier frames {size}")
                writer.append_data(_pad_even(frame))
                count += 1
        finally:
            writer.close()
        if count == 0:
            raise ValueError(f"no frames to write to {path}")
    return path


def read_video(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a video file into uint8 (t, h, w, 3)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file at {path}")
    reader = imageio.get_reader(path, format="FFMPEG", mode="I")
    try:
        frames = [np.asarray(frame)[..., :3] for frame in reader]
    finally:
        reader.close()
    if not frames:
        raise ValueError(f"{path} holds no frames")
    return np.stack(frames).astype(np.uint8, copy=False)


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an image uint8 (h, w, 3) to a PNG file atomically."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"save_png expects uint8 (h, w, 3), got {image.dtype} {image.shape}")
    with atomic_path(path) as temp:
        Image.fromarray(image).save(temp, format="PNG")
    return Path(path)
