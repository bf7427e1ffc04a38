"""Decoding camera images, resizing them to the clip size, and the intrinsics that go with it."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from worldmodel.data.errors import CorruptFileError


def decode_image(data: bytes | str | Path, source: str | Path | None = None) -> np.ndarray:
    """JPEG/PNG bytes or a path -> uint8 (H, W, 3); a damaged file raises CorruptFileError naming it."""
    name = source if source is not None else (data if isinstance(data, (str, Path)) else "<bytes>")
    try:
        handle = io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")
        with handle, Image.open(handle) as image:
            image.load()  # decode now: a truncated JPEG fails here, not later in a worker
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError as err:
        raise CorruptFileError(name, "file not found") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptFileError(name, f"cannot decode image ({err})") from err


def resize_crop_params(src: tuple[int, int], dst: tuple[int, int]) -> tuple[float, tuple[int, int]]:
    """Scale that covers dst (H, W) from src (H, W), and the (top, left) of the centre crop after it."""
    scale = max(dst[0] / src[0], dst[1] / src[1])
    scaled = (round(src[0] * scale), round(src[1] * scale))
    return scale, ((scaled[0] - dst[0]) // 2, (scaled[1] - dst[1]) // 2)


def resize_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) -> (h, w, 3): scale to cover, then centre-crop, so the aspect ratio is kept."""
    h, w = image.shape[:2]
    if (h, w) == tuple(size):
        return image
    scale, (top, left) = resize_crop_params((h, w), size)
    scaled = (round(w * scale), round(h * scale))
    resized = np.asarray(Image.fromarray(image).resize(scaled, Image.BILINEAR if scale > 1 else Image.BOX))
    return resized[top : top + size[0], left : left + size[1]]


def resize_crop_intrinsics(intrinsics: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """Pinhole K (3, 3) for the image that `resize_crop(src -> dst)` returns."""
    scale, (top, left) = resize_crop_params(src, dst)
    k = np.asarray(intrinsics, dtype=np.float64).copy()
    k[:2] *= scale
    k[0, 2] -= left
    k[1, 2] -= top
    return k.astype(np.float32)
