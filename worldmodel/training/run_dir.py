"""A training run folder is used by one run: a second run into it is refused unless it resumes or overwrites.

Lightning would otherwise carry on in a used folder quietly: its CSV logger deletes the earlier metrics.csv,
the export is replaced, and ModelCheckpoint writes `last-v1.ckpt` beside the earlier run's `last.ckpt`.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from worldmodel.errors import UserInputError
from worldmodel.files import FileWriteError
from worldmodel.training.checkpoint_io import newest_good_checkpoint

# What a run leaves in its folder (the checkpoint, export, sample and logger outputs of conf/); Hydra's own
# `.hydra/` and `train.log` are written before any work is done and do not make a folder used.
RUN_OUTPUTS = ("checkpoints", "export", "samples", "logs")


class RunDirError(UserInputError, OSError):
    """A run folder that holds another run, or that cannot be written to."""


def previous_run_outputs(run_dir: Path) -> list[str]:
    """The run outputs already in `run_dir` that hold files (empty: the folder is new or unused)."""
    found = []
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir() and any(p.is_file() for p in path.rglob("*")):
            found.append(name)
    return found


def check_run_dir(run_dir: Path, resuming: bool, overwrite: bool) -> None:
    """Refuse a folder that holds an earlier run unless this run resumes it or `overwrite=true` was given."""
    found = previous_run_outputs(run_dir)
    if not found or resuming or overwrite:
        return
    raise RunDirError(
        f"run_dir={run_dir} already holds a run ({', '.join(f'{n}/' for n in found)}); nothing was changed. "
        f"Resume it with ckpt_path=last, start a new run with another run_dir=, or replace it with overwrite=true")


def clear_previous_run(run_dir: Path) -> list[str]:
    """`overwrite=true`: delete the earlier run's outputs, so the new run's checkpoints are not mixed with them."""
    found = previous_run_outputs(run_dir)
    for name in found:
        shutil.rmtree(run_dir / name)
    return found


def check_writable(run_dir: Path) -> None:
    """Create `run_dir` and write a probe file in it; a read-only or full file system is named before work starts."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise RunDirError(f"run_dir={run_dir} cannot be written to ({describe_os_error(err)}): "
                          f"pick a writable folder with run_dir=") from err


def describe_os_error(err: OSError) -> str:
    """'no space left on device', 'read-only file system', ...: the cause as the system says it, lower case."""
    if err.errno is not None:
        return os.strerror(err.errno).lower()
    return str(err) or type(err).__name__


def disk_cause(err: BaseException, path: Path) -> str | None:
    """The file-system cause of a failed write, or None when it was not the file system.

    torch's zip writer reports a full disk as a RuntimeError ('unexpected pos') without an errno, so a
    failed write is also put down to a full disk when the folder has (almost) no room left.
    """
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
        return describe_os_error(err)
    if isinstance(err, (OSError, RuntimeError)):
        folder = next((p for p in (path, *path.parents) if p.exists()), None)
        if folder is not None:
            usage = shutil.disk_usage(folder)
            if usage.free < 1 << 20:  # under 1 MiB: the write ran the disk full
                return os.strerror(errno.ENOSPC).lower()
        if isinstance(err, OSError):
            return describe_os_error(err)
    return None


class RunDirWriteError(RunDirError):
    """Writing a checkpoint, the export or a log into the run folder failed (full disk, read-only folder)."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextmanager
def write_failure(run_dir: Path) -> Iterator[None]:
    """Turn a failed write during training into one line: the file, the cause and the last good checkpoint.

    Checkpoints and exports are written to a temporary name and renamed into place, so the one named here is
    complete: the run resumes from it once there is room again.
    """
    try:
        yield
    except RunDirError:
        raise
    except (OSError, RuntimeError) as err:
        path = Path(getattr(err, "path", None) or getattr(err, "filename", None) or run_dir)
        cause = disk_cause(err, path)
        if cause is None:
            raise
        last = newest_good_checkpoint(run_dir / "checkpoints")
        kept = (f"the last good checkpoint {last} is intact: free space, then resume with "
                f"worldmodel-train ckpt_path=last run_dir={run_dir}") if last else "no checkpoint was written yet"
        # The system's own words for the failure (torch's, for a full disk), not the wrapper's.
        detail = _first_line(err.__cause__ if isinstance(err, FileWriteError) and err.__cause__ else err)
        raise RunDirWriteError(f"could not write {path}: {cause} ({detail}); {kept}") from err
