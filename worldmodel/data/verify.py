"""Checking the files a clip index points at, before the index is written (`worldmodel-prepare verify=`).

Two depths:
  full    decode every image and every frame of every video the clips need: exact, as slow as one epoch
          of decoding.
  header  read each file's header and check its size: a JPEG must end with its end-of-image marker and a
          PNG with its IEND chunk (a file that does not is then decoded, so only a file that really fails
          to decode is left out); a video's header must give its frame rate and length, and an MP4 / MOV
          must hold every box its header lists (a download cut short does not). Cheap: it reads a few
          bytes per file. It does not see damage in the middle of a file that leaves its size intact.
A damaged file leaves out the clips that need it, recorded in the reader's SkipLog with the file and the
reason; the readers' `verify_files(mode)` do that and return a `VerifyReport`.
"""
from __future__ import annotations

import io
import os
import re
import struct
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from worldmodel.data.errors import CorruptFileError
from worldmodel.data.images import decode_image

VERIFY_MODES = ("full", "header")
DAMAGED_IMAGE = "damaged image (the clips that need it left out)"
DAMAGED_VIDEO = "damaged video (its clips left out)"
# How many bytes at a file's end hold its end marker; trailing padding of a few bytes is allowed.
_TAIL_BYTES = 64
_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND\xaeB`\x82"
_ISO_MEDIA = (".mp4", ".mov", ".m4v")
_FFMPEG_CONTEXT = re.compile(r"^(\[[^\]]*\]\s*)+")  # "[h264 @ 0x55...] ": the decoder's address, noise to a user


def check_mode(mode: str) -> str:
    """`mode` when it is one of VERIFY_MODES; ValueError naming the choices otherwise."""
    if mode not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}, got {mode!r}")
    return mode


@dataclass
class VerifyReport:
    """What a verification pass looked at and what it left out (recorded in summary.json)."""

    mode: str
    checked: int = 0  # files (or, where images live inside records, clips) looked at
    damaged: int = 0  # of those, how many failed
    clips_left_out: int = 0
    unit: str = "files"  # what `checked` and `damaged` count

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------
def _has_end_marker(tail: bytes, kind: str | None) -> bool:
    tail = tail.rstrip(b"\x00")  # some encoders pad the file after the marker
    if kind == "JPEG":
        return tail.endswith(_JPEG_END)
    if kind == "PNG":
        return tail.endswith(_PNG_END)
    return True  # other formats: the header is all this mode reads


def check_image_bytes(data: bytes, source: str | Path, mode: str) -> None:
    """An encoded image (JPEG / PNG bytes) as `mode` checks it; CorruptFileError naming `source` when damaged."""
    if mode == "full":
        decode_image(data, source=source)
        return
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (w, h) = image.format, image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptFileError(source, f"cannot read the image header ({err})") from err
    if w < 1 or h < 1:
        raise CorruptFileError(source, f"image header gives a size of {w}x{h}")
    if not _has_end_marker(data[-_TAIL_BYTES:], kind):
        # Missing end marker: truncated, or a writer that appends its own trailer. Decoding tells which.
        decode_image(data, source=source)


def check_image_file(path: str | Path, mode: str) -> None:
    """An image file as `mode` checks it (header mode reads its header and its last bytes only)."""
    if mode == "full":
        decode_image(path)
        return
    try:
        with open(path, "rb") as handle:
            with Image.open(handle) as image:
                kind, (w, h) = image.format, image.size
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - _TAIL_BYTES))
            tail = handle.read()
    except FileNotFoundError as err:
        raise CorruptFileError(path, "file not found") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptFileError(path, f"cannot read the image header ({err})") from err
    if w < 1 or h < 1:
        raise CorruptFileError(path, f"image header gives a size of {w}x{h}")
    if not _has_end_marker(tail, kind):
        decode_image(path)


# ----------------------------------------------------------------------------------------------
# Videos
# ----------------------------------------------------------------------------------------------
def check_iso_media_boxes(path: str | Path) -> None:
    """MP4 / MOV: every top-level box must lie inside the file; a file cut short ends inside one (CorruptFileError).

    Reads only the 8 or 16 header bytes of each top-level box (there are a handful: ftyp, moov, mdat, ...).
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        offset = 0
        while offset + 8 <= size:
            handle.seek(offset)
            length, kind = struct.unpack(">I4s", handle.read(8))
            header = 8
            if length == 1:  # a 64-bit size follows the type
                raw = handle.read(8)
                if len(raw) < 8:
                    break
                length, header = struct.unpack(">Q", raw)[0], 16
            elif length == 0:  # the box runs to the end of the file
                return
            name = kind.decode("latin-1")
            if length < header:
                raise CorruptFileError(path, f"box {name!r} at byte {offset} has an impossible size {length}")
            if offset + length > size:
                raise CorruptFileError(path, f"truncated: box {name!r} at byte {offset} needs {length} bytes, "
                                             f"the file ends after {size - offset}")
            offset += length


def count_decoded_frames(path: str | Path) -> int:
    """Decode every frame of a video's first video stream (no output written); CorruptFileError on a decode error."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-xerror", "-i", str(path),
               "-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        errors = [_FFMPEG_CONTEXT.sub("", line.strip()) for line in done.stderr.splitlines() if line.strip()]
        first = errors[0] if errors else f"ffmpeg exit {done.returncode}"
        raise CorruptFileError(path, f"cannot decode every frame ({first})")
    frames = [line.split("=", 1)[1] for line in done.stdout.splitlines() if line.startswith("frame=")]
    return int(frames[-1]) if frames else 0


def check_video_file(path: str | Path, mode: str, frames_needed: int) -> None:
    """A video as `mode` checks it, given how many of its frames the clips read (0..frames_needed - 1)."""
    from worldmodel.data.videos import probe_video  # videos.py imports this module

    info = probe_video(path)
    if info.num_frames < frames_needed:
        raise CorruptFileError(path, f"header gives {info.num_frames} frames, the clips need {frames_needed}")
    if Path(path).suffix.lower() in _ISO_MEDIA:
        check_iso_media_boxes(path)
    if mode == "full":
        decoded = count_decoded_frames(path)
        if decoded < frames_needed:
            raise CorruptFileError(path, f"video ended after {decoded} frames, the clips need {frames_needed}")


# ----------------------------------------------------------------------------------------------
# One pass over the files of a reader's clips
# ----------------------------------------------------------------------------------------------
def damaged_files(checks: Iterable[tuple[str, Callable[[], None]]], progress: bool = False,
                  total: int | None = None) -> dict[str, CorruptFileError]:
    """Run each (file, check) once; the file -> error of those that failed, in the order met."""
    bad: dict[str, CorruptFileError] = {}
    for name, check in tqdm(checks, total=total, desc="verify", unit="file", disable=not progress):
        try:
            check()
        except CorruptFileError as err:
            bad[name] = err
    return bad
