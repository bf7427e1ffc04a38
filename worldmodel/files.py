"""Atomic file output: a file is either the old one or the complete new one, never partial."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `final_path`; move it onto `final_path` on success.

    The temporary name keeps the final suffix (`.name.tmp-<pid>-<rand>.mp4`) because tools
    such as imageio pick the writer from the extension. It lives in the same directory so that
    `os.replace` is a rename on one file system, hence atomic. On an exception the temporary
    file is removed and an existing `final_path` is left untouched.
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{final.suffix}")
    try:
        yield temp
        if not temp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file {temp} for {final}")
        os.replace(temp, final)
    finally:
        # After a successful replace the temp name no longer exists; otherwise clean up.
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically and return the final path."""
    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically and return the final path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> Path:
    """Write `obj` as JSON (indented, sorted keys, trailing newline) atomically."""
    # Serialise before touching the disk so an unserialisable object leaves nothing behind.
    text = json.dumps(obj, indent=indent, sort_keys=True) + "\n"
    return atomic_write_text(path, text)


class FileWriteError(OSError):
    """Writing `path` failed; carries the path, and the errno of the cause where it had one.

    torch's zip writer reports a full disk as a RuntimeError without a file name or errno: this names the file,
    so that the message a user reads says which write failed.
    """

    def __init__(self, path: str | os.PathLike[str], cause: BaseException) -> None:
        message = f"writing {path} failed ({type(cause).__name__}: {cause})"
        if isinstance(cause, OSError) and cause.errno is not None:
            super().__init__(cause.errno, message)
        else:
            super().__init__(message)
        self.path = Path(path)
